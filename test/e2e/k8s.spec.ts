import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import * as kubernetes from 'kubernetes-models';
import * as keda from '@kubernetes-models/keda';
import { parseAllDocuments } from 'yaml';
import { kafkaConnectionFromEnv } from '@backstop/messaging';
import { SERVICE_NAMES, tokensFromEnv } from '@backstop/platform';
import { WORKSPACE_ROOT } from '@backstop/testing';
import { restrictedViolations } from './pod-security';

/* eslint-disable @typescript-eslint/no-explicit-any -- rendered manifests are untyped YAML */
type Manifest = Record<string, any> & { apiVersion: string; kind: string; metadata: { name: string; namespace?: string } };

/**
 * No cluster here: every overlay (and the optional components, on top of the production overlay) is
 * rendered with `kubectl kustomize`, each object is validated against the Kubernetes (and KEDA)
 * OpenAPI schemas shipped by kubernetes-models, and every pod template against the "restricted"
 * Pod Security Standard (./pod-security.ts). Nothing here needs the network.
 */
const K8S = join(WORKSPACE_ROOT, 'deploy', 'k8s');
const SCALABLE = SERVICE_NAMES.filter((s) => s !== 'margin-monitor');
/** Every Deployment: the four services and the ledger service (apps/ledger, its own store). */
const DEPLOYED = [...SERVICE_NAMES, 'ledger'];

function kustomize(dir: string): Manifest[] {
  const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8', timeout: 60_000, stdio: ['ignore', 'pipe', 'pipe'] });
  return parseAllDocuments(out).map((d) => d.toJS() as Manifest).filter(Boolean);
}

/** Components that only make sense on top of others (an operator lists those first). */
const REQUIRES: Record<string, readonly string[]> = { 'keda-secured-kafka': ['keda', 'secured-kafka'] };

/** Production plus one component (and the ones it requires), the way an operator would enable it (a throw-away overlay). */
function withComponent(component: string): Manifest[] {
  const dir = mkdtempSync(join(tmpdir(), 'backstop-kustomize-'));
  try {
    const rel = (p: string) => relative(dir, join(K8S, p));
    const list = [...(REQUIRES[component] ?? []), component].map((c) => rel(`components/${c}`));
    writeFileSync(join(dir, 'kustomization.yaml'), `resources: [${rel('overlays/production')}]\ncomponents: [${list.join(', ')}]\n`);
    return kustomize(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const camel = (group: string) => group.split(/[.-]/).map((part, i) => (i === 0 ? part : part[0].toUpperCase() + part.slice(1))).join('');

/** The schema-backed model class for an apiVersion/kind, from kubernetes-models or its KEDA models. */
function modelFor(apiVersion: string, kind: string): (new (data: unknown) => { validate(): void }) | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['', apiVersion];
  const root: any = group.endsWith('keda.sh') ? keda : kubernetes;
  const versions = group ? root[camel(group)] : root;
  return versions?.[version]?.[kind];
}

function schemaErrors(manifests: Manifest[]): string[] {
  return manifests.flatMap((m) => {
    const Model = modelFor(m.apiVersion, m.kind);
    if (!Model) return [`${m.apiVersion} ${m.kind} ${m.metadata.name}: no schema for this kind`];
    // kustomize wraps long base64 Secret values over lines; the API server's decoder (Go's
    // encoding/base64) skips the line breaks, the schema's "byte" format does not: unwrap first.
    const data = m.kind === 'Secret' && m.data ? { data: Object.fromEntries(Object.entries(m.data).map(([k, v]) => [k, String(v).replace(/\n/g, '')])) } : {};
    try {
      new Model({ ...m, ...data }).validate();
      return [];
    } catch (error) {
      return [`${m.kind} ${m.metadata.name}: ${(error as Error).message}`];
    }
  });
}

const deploymentsOf = (ms: Manifest[]) => ms.filter((m) => m.kind === 'Deployment');
const containerOf = (d: Manifest) => d.spec.template.spec.containers[0];
const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
  !!selector && Object.entries(selector).every(([k, v]) => labels[k] === v);

const overlays = readdirSync(join(K8S, 'overlays'));
const components = readdirSync(join(K8S, 'components'));
const rendered: [string, Manifest[]][] = [
  ['base', kustomize(join(K8S, 'base'))],
  ...overlays.map((o): [string, Manifest[]] => [`overlays/${o}`, kustomize(join(K8S, 'overlays', o))]),
  ...components.map((c): [string, Manifest[]] => [`overlays/production + components/${c}`, withComponent(c)]),
];

describe('deploy/k8s', () => {
  it('has a production overlay and renders every overlay and component', () => {
    expect(overlays).toEqual(expect.arrayContaining(['production', 'dev']));
    expect(components).toContain('keda');
    for (const [, manifests] of rendered) expect(manifests.length).toBeGreaterThan(10);
  });

  describe.each(rendered)('%s', (_name, manifests) => {
    it('validates against the Kubernetes and KEDA schemas', () => {
      expect(schemaErrors(manifests)).toEqual([]);
    });

    it('deploys every service and the ledger, each pod passing the restricted Pod Security Standard', () => {
      expect(deploymentsOf(manifests).map((d) => d.metadata.name).sort()).toEqual([...DEPLOYED].sort());
      const violations = deploymentsOf(manifests).flatMap((d) => restrictedViolations(d.spec.template.spec, d.spec.template.metadata?.annotations, d.metadata.name));
      expect(violations).toEqual([]);
      const ns = manifests.find((m) => m.kind === 'Namespace');
      expect(ns?.metadata).toMatchObject({ labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } });
    });

    it('hardens each pod beyond the standard: read-only root, no service-account token, writable /tmp only (and the ledger its store)', () => {
      for (const d of deploymentsOf(manifests)) {
        const pod = d.spec.template.spec;
        const container = containerOf(d);
        expect(pod.automountServiceAccountToken).toBe(false);
        expect(container.securityContext.readOnlyRootFilesystem).toBe(true);
        // The one writable mount is /tmp (an emptyDir; the ledger also has its data volume); any other (secured-kafka's credentials) is a read-only Secret.
        const mounts = (container.volumeMounts ?? []) as { name: string; mountPath: string; readOnly?: boolean }[];
        const volumeOf = (name: string) => pod.volumes.find((v: { name: string }) => v.name === name);
        expect(mounts.filter((m) => !m.readOnly).map((m) => m.mountPath)).toEqual(d.metadata.name === 'ledger' ? ['/tmp', '/app/data'] : ['/tmp']);
        expect(volumeOf(mounts.find((m) => m.mountPath === '/tmp')!.name).emptyDir).toBeDefined();
        for (const m of mounts.filter((x) => x.readOnly)) expect(volumeOf(m.name).secret?.secretName).toBe('backstop-kafka');
      }
      const sa = manifests.find((m) => m.kind === 'ServiceAccount');
      expect(sa?.automountServiceAccountToken).toBe(false);
    });

    it('probes start-up, readiness and liveness, and drains before SIGTERM within the grace period', () => {
      for (const d of deploymentsOf(manifests)) {
        const c = containerOf(d);
        expect(c.startupProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
        expect(c.readinessProbe.httpGet).toEqual({ path: '/health/ready', port: 'http' });
        expect(c.livenessProbe.httpGet).toEqual({ path: '/health/live', port: 'http' });
        // A slow consumer-group join must not trip liveness: the start-up budget is at least a minute.
        expect(c.startupProbe.periodSeconds * c.startupProbe.failureThreshold).toBeGreaterThanOrEqual(60);
        const [cmd, seconds] = c.lifecycle.preStop.exec.command;
        expect(cmd).toBe('sleep');
        expect(Number(seconds)).toBeGreaterThan(0);
        expect(d.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThan(Number(seconds) + 20);
        expect(d.spec.template.spec.topologySpreadConstraints.map((t: { topologyKey: string }) => t.topologyKey)).toEqual(
          expect.arrayContaining(['kubernetes.io/hostname', 'topology.kubernetes.io/zone']),
        );
      }
    });

    it('feeds each Deployment from a hashed ConfigMap (config changes roll the pods) and the backstop-secrets Secret', () => {
      const configMaps = manifests.filter((m) => m.kind === 'ConfigMap');
      expect(configMaps).toHaveLength(1);
      expect(configMaps[0].metadata.name).toMatch(/^backstop-config-[a-z0-9]{10}$/);
      for (const d of deploymentsOf(manifests)) {
        const c = containerOf(d);
        expect(c.env).toEqual(expect.arrayContaining([{ name: 'SERVICE', value: d.metadata.name }]));
        const refs = c.envFrom as { configMapRef?: { name: string }; secretRef?: { name: string } }[];
        expect(refs.find((r) => r.configMapRef)?.configMapRef?.name).toBe(configMaps[0].metadata.name);
        const secretName = refs.find((r) => r.secretRef)?.secretRef?.name;
        const secret = manifests.find((m) => m.kind === 'Secret');
        // Either the overlay generates it (then the reference carries its hash) or it is made out of band.
        expect(secretName).toBe(secret ? secret.metadata.name : 'backstop-secrets');
      }
    });

    it('ships no Secret unless it is generated, and no placeholder tokens', () => {
      for (const secret of manifests.filter((m) => m.kind === 'Secret')) {
        expect(secret.metadata.name).toMatch(/^backstop-secrets-[a-z0-9]{10}$/); // a secretGenerator's, never a static one
        const data = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(String(v), 'base64').toString('utf8')]));
        expect(data.EVENTSTORE_CONNECTION_STRING).toMatch(/^esdb:\/\//);
        expect(() => tokensFromEnv({ BACKSTOP_TOKENS: data.BACKSTOP_TOKENS })).not.toThrow();
      }
    });

    it('has a PodDisruptionBudget per Deployment that never blocks a drain of margin-monitor or the ledger', () => {
      const pdbs = manifests.filter((m) => m.kind === 'PodDisruptionBudget');
      for (const d of deploymentsOf(manifests)) {
        const pdb = pdbs.filter((p) => matches(p.spec.selector.matchLabels, d.spec.template.metadata.labels));
        expect(pdb).toHaveLength(1);
        if (d.metadata.name === 'margin-monitor' || d.metadata.name === 'ledger') expect(pdb[0].spec.maxUnavailable).toBe(1);
      }
    });

    it('runs margin-monitor as a single replica that is never doubled and never autoscaled', () => {
      const margin = deploymentsOf(manifests).find((m) => m.metadata.name === 'margin-monitor')!;
      expect(margin.spec.replicas).toBe(1);
      expect(margin.spec.strategy.type).toBe('Recreate');
      const scalers = manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler' || m.kind === 'ScaledObject');
      expect(scalers.map((s) => s.spec.scaleTargetRef.name)).not.toContain('margin-monitor');
    });

    it('autoscales the other services up to the partition count, by exactly one scaler each', () => {
      const scalers = manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler' || m.kind === 'ScaledObject');
      expect(scalers.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([...SCALABLE].sort());
      const config = manifests.find((m) => m.kind === 'ConfigMap')!;
      for (const s of scalers) {
        const max = s.kind === 'ScaledObject' ? s.spec.maxReplicaCount : s.spec.maxReplicas;
        expect(max).toBeLessThanOrEqual(Number(config.data.KAFKA_PARTITIONS));
        if (s.kind === 'ScaledObject') {
          const [trigger] = s.spec.triggers;
          expect(trigger.type).toBe('kafka');
          expect(trigger.metadata.consumerGroup).toBe(`${s.spec.scaleTargetRef.name}.commands`);
        }
      }
      // The HPA owns the replica count: a `replicas` in the Deployment would be reset by every apply.
      for (const d of deploymentsOf(manifests).filter((x) => (SCALABLE as readonly string[]).includes(x.metadata.name))) expect(d.spec.replicas).toBeUndefined();
    });

    it('runs the ledger as one replica on its own store (a volume), never the services\' store, never autoscaled', () => {
      const ledger = deploymentsOf(manifests).find((m) => m.metadata.name === 'ledger')!;
      expect(ledger.spec.replicas).toBe(1);
      expect(ledger.spec.strategy.type).toBe('Recreate');
      const env = Object.fromEntries((containerOf(ledger).env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
      expect(env).toMatchObject({ SERVICE: 'ledger', EVENTSTORE_CONNECTION_STRING: '', BACKSTOP_DATA_FILE: '/app/data/ledger.db' });
      const data = ledger.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data');
      const claim = manifests.find((m) => m.kind === 'PersistentVolumeClaim' && m.metadata.name === data.persistentVolumeClaim.claimName);
      expect(claim?.spec.accessModes).toEqual(['ReadWriteOnce']);
      expect(manifests.find((m) => m.kind === 'Service' && m.metadata.name === 'ledger')?.spec.selector).toEqual({ 'app.kubernetes.io/name': 'ledger' });
      const scalers = manifests.filter((m) => m.kind === 'HorizontalPodAutoscaler' || m.kind === 'ScaledObject');
      expect(scalers.map((s) => s.spec.scaleTargetRef.name)).not.toContain('ledger');
    });

    it('denies all traffic by default and allows only HTTP in, and DNS, Kafka, the store and OTLP out', () => {
      const policies = manifests.filter((m) => m.kind === 'NetworkPolicy');
      const deny = policies.find((p) => Object.keys(p.spec.podSelector).length === 0);
      expect(deny?.spec).toEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
      for (const d of deploymentsOf(manifests)) {
        const labels = d.spec.template.metadata.labels;
        const mine = policies.filter((p) => p !== deny && matches(p.spec.podSelector.matchLabels, labels));
        const ingressPorts = mine.flatMap((p) => (p.spec.ingress ?? []).flatMap((r: { ports: { port: number }[] }) => r.ports.map((x) => x.port)));
        expect(ingressPorts).toEqual([containerOf(d).ports[0].containerPort]);
        const egress = mine.flatMap((p) => p.spec.egress ?? []) as { to: { namespaceSelector: { matchLabels: Record<string, string> } }[]; ports: { port: number }[] }[];
        const byNamespace = Object.fromEntries(egress.map((r) => [r.to[0].namespaceSelector.matchLabels['kubernetes.io/metadata.name'], r.ports.map((x) => x.port).sort()]));
        expect(byNamespace).toEqual({ 'kube-system': [53, 53], kafka: [9092, 9093], eventstore: [2113], observability: [4317, 4318] });
      }
    });
  });

  describe('components/secured-kafka (and keda-secured-kafka)', () => {
    const secured = rendered.find(([name]) => name === 'overlays/production + components/secured-kafka')![1];
    const securedKeda = rendered.find(([name]) => name === 'overlays/production + components/keda-secured-kafka')![1];
    const MOUNT = '/etc/backstop/kafka';

    it('mounts the backstop-kafka Secret read-only and sets KAFKA_* vars that the services\' own parser accepts (TLS + SCRAM-SHA-512)', () => {
      const config = secured.find((m) => m.kind === 'ConfigMap')!;
      for (const d of deploymentsOf(secured)) {
        const c = containerOf(d);
        expect(c.volumeMounts).toEqual(expect.arrayContaining([{ name: 'kafka-credentials', mountPath: MOUNT, readOnly: true }]));
        const volume = d.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'kafka-credentials');
        expect(volume.secret.secretName).toBe('backstop-kafka');
        expect(volume.secret.defaultMode & 0o007).toBe(0); // not world-readable
        const username = c.env.find((e: { name: string }) => e.name === 'KAFKA_SASL_USERNAME');
        expect(username.valueFrom.secretKeyRef).toEqual({ name: 'backstop-kafka', key: 'username' });
        // The container's environment as the pod sees it, the Secret's files as mounted (keys -> paths).
        const secretFiles: Record<string, string> = { [`${MOUNT}/ca.crt`]: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', [`${MOUNT}/password`]: 'scram-password-from-secret\n' };
        const env = { ...config.data, KAFKA_SASL_USERNAME: 'backstop' };
        const read = (path: string) => {
          if (!(path in secretFiles)) throw new Error(`ENOENT: ${path} is not a key of the backstop-kafka Secret`);
          return secretFiles[path];
        };
        const connection = kafkaConnectionFromEnv(env, read);
        expect(connection.tls?.ca).toContain('BEGIN CERTIFICATE');
        expect(connection.sasl).toEqual({ mechanism: 'scram-sha-512', username: 'backstop', password: 'scram-password-from-secret' });
        // No password in the ConfigMap or the pod spec: only file paths and a secretKeyRef.
        expect(JSON.stringify(config.data)).not.toMatch(/KAFKA_SASL_PASSWORD"/);
      }
      // The base and production stay plaintext (nothing mounted, no SASL).
      const production = rendered.find(([name]) => name === 'overlays/production')![1];
      expect(production.find((m) => m.kind === 'ConfigMap')!.data.KAFKA_SASL_MECHANISM).toBeUndefined();
    });

    it('gives every KEDA kafka trigger the TLS listener and a TriggerAuthentication on the same Secret', () => {
      const auths = securedKeda.filter((m) => m.kind === 'TriggerAuthentication');
      expect(auths).toHaveLength(1);
      const params = Object.fromEntries(auths[0].spec.secretTargetRef.map((r: { parameter: string; name: string; key: string }) => [r.parameter, `${r.name}/${r.key}`]));
      expect(params).toEqual({ username: 'backstop-kafka/username', password: 'backstop-kafka/password', ca: 'backstop-kafka/ca.crt' });
      const config = securedKeda.find((m) => m.kind === 'ConfigMap')!;
      const scaled = securedKeda.filter((m) => m.kind === 'ScaledObject');
      expect(scaled.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual([...SCALABLE].sort());
      for (const s of scaled) {
        const [trigger] = s.spec.triggers;
        expect(trigger.authenticationRef).toEqual({ name: auths[0].metadata.name });
        expect(trigger.metadata).toMatchObject({ sasl: 'scram_sha512', tls: 'enable', bootstrapServers: config.data.KAFKA_BROKERS });
      }
    });
  });

  it('production: pinned image, no Secret in the repository, traces exported, zones spread strictly', () => {
    const production = rendered.find(([name]) => name === 'overlays/production')![1];
    expect(production.filter((m) => m.kind === 'Secret')).toEqual([]);
    for (const d of deploymentsOf(production)) {
      expect(containerOf(d).image).toMatch(/^[^:]+(:[\w.-]+|@sha256:[0-9a-f]{64})$/);
      expect(containerOf(d).image).not.toMatch(/:latest$/);
    }
    const config = production.find((m) => m.kind === 'ConfigMap')!;
    expect(config.data.OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(/^https?:\/\//);
    const intake = deploymentsOf(production).find((d) => d.metadata.name === 'contract-intake')!;
    expect(intake.spec.template.spec.topologySpreadConstraints[0]).toMatchObject({ topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule' });
  });

  it('the checks catch a pod as the old manifests had it (no securityContext, root, token mounted)', () => {
    const [, production] = rendered.find(([name]) => name === 'overlays/production')!;
    const good = deploymentsOf(production)[0].spec.template.spec;
    const bad = structuredClone(good);
    delete bad.securityContext;
    delete bad.containers[0].securityContext;
    bad.volumes.push({ name: 'host', hostPath: { path: '/var/run' } });
    bad.containers[0].ports[0].hostPort = 3000;
    expect([...new Set(restrictedViolations(bad).map((v) => v.check))].sort()).toEqual([
      'baseline/Host Ports',
      'baseline/HostPath Volumes',
      'restricted/Capabilities',
      'restricted/Privilege Escalation',
      'restricted/Running as Non-root',
      'restricted/Seccomp',
      'restricted/Volume Types',
    ]);
    const root = structuredClone(good);
    root.securityContext.runAsUser = 0;
    root.securityContext.seccompProfile = { type: 'Unconfined' };
    root.containers[0].securityContext.capabilities.add = ['NET_ADMIN'];
    root.hostNetwork = true;
    expect([...new Set(restrictedViolations(root).map((v) => v.check))].sort()).toEqual([
      'baseline/Capabilities',
      'baseline/Host Namespaces',
      'baseline/Seccomp',
      'restricted/Capabilities',
      'restricted/Running as Non-root user',
      'restricted/Seccomp',
    ]);
    // and the schema check catches a wrongly typed field
    const broken = structuredClone(deploymentsOf(production)[0]);
    broken.spec.template.spec.terminationGracePeriodSeconds = 'forty-five';
    expect(schemaErrors([broken])[0]).toMatch(/terminationGracePeriodSeconds must be integer/);
  });
});

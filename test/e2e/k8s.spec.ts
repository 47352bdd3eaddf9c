import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { SERVICE_NAMES, tokensFromEnv } from '@backstop/platform';
import { WORKSPACE_ROOT } from '@backstop/testing';

interface Manifest {
  kind: string;
  metadata: { name: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
  spec?: { replicas?: number; strategy?: { type: string }; template?: { spec?: { containers?: { env?: { name: string; value: string }[]; envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[] }[] } } };
}

/** No cluster here; this keeps deploy/k8s consistent with itself and with the apps it starts. */
describe('deploy/k8s', () => {
  const dir = join(WORKSPACE_ROOT, 'deploy', 'k8s');
  const kustomization = parseAllDocuments(readFileSync(join(dir, 'kustomization.yaml'), 'utf8'))[0].toJS() as { resources: string[] };
  const manifests = kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(join(dir, file), 'utf8')).map((d) => d.toJS() as Manifest).filter(Boolean),
  );

  it('lists files that exist and deploys every service', () => {
    for (const file of kustomization.resources) expect(existsSync(join(dir, file))).toBe(true);
    const deployments = manifests.filter((m) => m.kind === 'Deployment').map((m) => m.metadata.name).sort();
    expect(deployments).toEqual([...SERVICE_NAMES].sort());
  });

  it('feeds each Deployment from a ConfigMap and a Secret that exist, with shared, parseable tokens', () => {
    const names = (kind: string) => new Set(manifests.filter((m) => m.kind === kind).map((m) => m.metadata.name));
    for (const deployment of manifests.filter((m) => m.kind === 'Deployment')) {
      const [container] = deployment.spec!.template!.spec!.containers!;
      expect(container.env).toEqual(expect.arrayContaining([{ name: 'SERVICE', value: deployment.metadata.name }]));
      for (const source of container.envFrom ?? []) {
        if (source.configMapRef) expect(names('ConfigMap')).toContain(source.configMapRef.name);
        if (source.secretRef) expect(names('Secret')).toContain(source.secretRef.name);
      }
    }
    const secret = manifests.find((m) => m.kind === 'Secret')!;
    expect(secret.stringData?.EVENTSTORE_CONNECTION_STRING).toMatch(/^esdb:\/\//);
    expect(() => tokensFromEnv({ BACKSTOP_TOKENS: secret.stringData?.BACKSTOP_TOKENS })).not.toThrow();
  });

  it('runs margin-monitor as a single replica that is never doubled during a rollout', () => {
    const margin = manifests.find((m) => m.kind === 'Deployment' && m.metadata.name === 'margin-monitor')!;
    expect(margin.spec?.replicas).toBe(1);
    expect(margin.spec?.strategy?.type).toBe('Recreate');
  });
});

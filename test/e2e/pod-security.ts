/**
 * The Kubernetes Pod Security Standards, "baseline" and "restricted" profiles, as written in
 * https://kubernetes.io/docs/concepts/security/pod-security-standards/ (policy version "latest",
 * Kubernetes 1.30+), one named check per control. No npm package ships these rules offline, so they
 * are written out here control by control; test/e2e/k8s.spec.ts also runs them on a deliberately bad
 * pod to show that each one can fail.
 */

/* eslint-disable @typescript-eslint/no-explicit-any -- manifests are untyped YAML */
type Obj = Record<string, any>;

export interface Violation {
  readonly check: string;
  readonly where: string;
}

const BASELINE_CAPABILITIES = new Set(['AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_BIND_SERVICE', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT']);
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.ip_unprivileged_port_start', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports', 'net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set([undefined, '', 'container_t', 'container_init_t', 'container_kvm_t', 'container_engine_t']);
const RESTRICTED_VOLUME_SOURCES = new Set(['configMap', 'csi', 'downwardAPI', 'emptyDir', 'ephemeral', 'persistentVolumeClaim', 'projected', 'secret']);

function containersOf(spec: Obj): Obj[] {
  return [...(spec.initContainers ?? []), ...(spec.containers ?? []), ...(spec.ephemeralContainers ?? [])];
}

/** Every control of the baseline profile (the restricted profile includes them). */
export function baselineViolations(podSpec: Obj, podAnnotations: Obj = {}, where = 'pod'): Violation[] {
  const out: Violation[] = [];
  const add = (check: string, at: string) => out.push({ check, where: `${where}${at}` });
  const pod = podSpec.securityContext ?? {};
  const containers = containersOf(podSpec);

  if (pod.windowsOptions?.hostProcess) add('baseline/HostProcess', '.securityContext.windowsOptions.hostProcess');
  for (const c of containers) if (c.securityContext?.windowsOptions?.hostProcess) add('baseline/HostProcess', ` container ${c.name}`);

  for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) if (podSpec[field]) add('baseline/Host Namespaces', `.${field}`);

  for (const c of containers) if (c.securityContext?.privileged) add('baseline/Privileged Containers', ` container ${c.name}`);

  for (const c of containers) {
    for (const cap of c.securityContext?.capabilities?.add ?? []) if (!BASELINE_CAPABILITIES.has(cap)) add('baseline/Capabilities', ` container ${c.name} adds ${cap}`);
  }

  for (const v of podSpec.volumes ?? []) if (v.hostPath) add('baseline/HostPath Volumes', ` volume ${v.name}`);

  for (const c of containers) for (const p of c.ports ?? []) if (p.hostPort) add('baseline/Host Ports', ` container ${c.name} hostPort ${p.hostPort}`);

  const appArmorOk = (t: unknown) => t === undefined || t === 'RuntimeDefault' || t === 'Localhost';
  if (!appArmorOk(pod.appArmorProfile?.type)) add('baseline/AppArmor', '.securityContext.appArmorProfile');
  for (const c of containers) if (!appArmorOk(c.securityContext?.appArmorProfile?.type)) add('baseline/AppArmor', ` container ${c.name}`);
  for (const [key, value] of Object.entries(podAnnotations)) {
    if (key.startsWith('container.apparmor.security.beta.kubernetes.io/') && value !== 'runtime/default' && !String(value).startsWith('localhost/')) add('baseline/AppArmor', ` annotation ${key}`);
  }

  const seLinuxOk = (o: Obj | undefined) => !o || (SELINUX_TYPES.has(o.type) && !o.user && !o.role);
  if (!seLinuxOk(pod.seLinuxOptions)) add('baseline/SELinux', '.securityContext.seLinuxOptions');
  for (const c of containers) if (!seLinuxOk(c.securityContext?.seLinuxOptions)) add('baseline/SELinux', ` container ${c.name}`);

  for (const c of containers) {
    const mount = c.securityContext?.procMount;
    if (mount !== undefined && mount !== 'Default') add('baseline//proc Mount Type', ` container ${c.name}`);
  }

  if (pod.seccompProfile?.type === 'Unconfined') add('baseline/Seccomp', '.securityContext.seccompProfile');
  for (const c of containers) if (c.securityContext?.seccompProfile?.type === 'Unconfined') add('baseline/Seccomp', ` container ${c.name}`);

  for (const s of pod.sysctls ?? []) if (!SAFE_SYSCTLS.has(s.name)) add('baseline/Sysctls', ` ${s.name}`);
  return out;
}

/** The restricted profile: the baseline plus its own controls. */
export function restrictedViolations(podSpec: Obj, podAnnotations: Obj = {}, where = 'pod'): Violation[] {
  const out = baselineViolations(podSpec, podAnnotations, where);
  const add = (check: string, at: string) => out.push({ check, where: `${where}${at}` });
  const pod = podSpec.securityContext ?? {};
  const containers = containersOf(podSpec);

  for (const v of podSpec.volumes ?? []) {
    const sources = Object.keys(v).filter((k) => k !== 'name');
    if (sources.some((s) => !RESTRICTED_VOLUME_SOURCES.has(s))) add('restricted/Volume Types', ` volume ${v.name} (${sources.join(', ')})`);
  }

  for (const c of containers) if (c.securityContext?.allowPrivilegeEscalation !== false) add('restricted/Privilege Escalation', ` container ${c.name}`);

  for (const c of containers) {
    const own = c.securityContext?.runAsNonRoot;
    if (own === false || (own !== true && pod.runAsNonRoot !== true)) add('restricted/Running as Non-root', ` container ${c.name}`);
  }

  if (pod.runAsUser === 0) add('restricted/Running as Non-root user', '.securityContext.runAsUser');
  for (const c of containers) if (c.securityContext?.runAsUser === 0) add('restricted/Running as Non-root user', ` container ${c.name}`);

  const seccompOk = (t: unknown) => t === 'RuntimeDefault' || t === 'Localhost';
  for (const c of containers) {
    const own = c.securityContext?.seccompProfile?.type;
    if (own !== undefined ? !seccompOk(own) : !seccompOk(pod.seccompProfile?.type)) add('restricted/Seccomp', ` container ${c.name}`);
  }

  for (const c of containers) {
    const caps = c.securityContext?.capabilities ?? {};
    if (!(caps.drop ?? []).includes('ALL')) add('restricted/Capabilities', ` container ${c.name} does not drop ALL`);
    for (const cap of caps.add ?? []) if (cap !== 'NET_BIND_SERVICE') add('restricted/Capabilities', ` container ${c.name} adds ${cap}`);
  }
  return out;
}

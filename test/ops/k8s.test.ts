// The operator files (k8s/, Dockerfile) checked against the code they deploy: routes, ports,
// settings, the drain deadline, the image's user and entrypoint. Nothing here needs a cluster.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parseAllDocuments } from 'yaml'
import { ConfigEnv, loadConfig } from '../../src/ops/config.ts'
import { startTestHub } from '../helpers/hub.ts'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const K8S = `${ROOT}k8s/`

type Obj = Record<string, any>

/** Every YAML document in every file of k8s/, with the file it came from. */
function loadManifests(): { file: string; doc: Obj }[] {
  const out: { file: string; doc: Obj }[] = []
  for (const file of readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(readFileSync(K8S + file, 'utf8'))) {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`)
      const doc = d.toJS()
      if (doc !== null && doc !== undefined) out.push({ file, doc })
    }
  }
  return out
}

const all = loadManifests()
const objects = all.filter((m) => m.doc.kind !== 'Kustomization')

/** The one object of this kind (fails the whole file if there are none or several). */
function only(kind: string): Obj {
  const found = objects.filter((m) => m.doc.kind === kind)
  if (found.length !== 1) throw new Error(`expected one ${kind} in k8s/, found ${found.length}`)
  return found[0].doc
}

const kustomization: Obj = all.find((m) => m.file === 'kustomization.yaml')?.doc ?? {}
const deployment = only('Deployment')
const service = only('Service')
const hpa = only('HorizontalPodAutoscaler')
const pdb = only('PodDisruptionBudget')
const configMap = only('ConfigMap')
const secret = only('Secret')
const job = only('Job')
const hub = deployment.spec.template.spec.containers[0]
const migrator = job.spec.template.spec.containers[0]
const configData: Record<string, string> = configMap.data ?? {}
const secretData: Record<string, string> = { ...secret.data, ...secret.stringData }
const settingNames = new Set(Object.keys(ConfigEnv.shape))

/** The Dockerfile's instructions (continuation lines joined): every FROM, all steps, and the last (runtime) stage's. */
function dockerfile(): { from: string[]; runtime: { op: string; arg: string }[]; all: { op: string; arg: string }[] } {
  const text = readFileSync(`${ROOT}Dockerfile`, 'utf8').replace(/\\\n/g, ' ')
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const steps = lines.map((l) => {
    const [, op, arg] = /^(\w+)\s+(.*)$/.exec(l)!
    return { op: op.toUpperCase(), arg: arg.trim() }
  })
  const lastFrom = steps.map((s) => s.op).lastIndexOf('FROM')
  return { from: steps.filter((s) => s.op === 'FROM').map((s) => s.arg), runtime: steps.slice(lastFrom), all: steps }
}
const docker = dockerfile()
const dockerStep = (op: string) => docker.runtime.filter((s) => s.op === op).map((s) => s.arg)

/** Every container of the Deployment and the Job. */
const containers = [hub, migrator]
const podSpecs = [deployment.spec.template.spec, job.spec.template.spec]

/** The value the hub sees for a variable: the container's env, else its ConfigMap, else unset. */
function effectiveEnv(container: Obj, name: string): string | undefined {
  const direct = (container.env ?? []).find((e: Obj) => e.name === name)
  if (direct) return direct.value
  return configData[name]
}

const containerPort = hub.ports.find((p: Obj) => p.name === 'http')

t.test('every manifest parses and the kustomization lists exactly the manifest files', async (t) => {
  t.equal(kustomization.kind, 'Kustomization', 'k8s/kustomization.yaml is the base')
  const listed: string[] = kustomization.resources ?? []
  const files = readdirSync(K8S).filter((f) => /\.ya?ml$/.test(f) && f !== 'kustomization.yaml').sort()
  t.same([...listed].sort(), files, 'each manifest file once, and no file that is not there')
  t.equal(new Set(listed).size, listed.length, 'no file listed twice')
  for (const f of listed) t.ok(existsSync(K8S + f), `${f} exists`)
  for (const { file, doc } of objects) {
    t.ok(doc.apiVersion && doc.kind && doc.metadata?.name, `${file}: ${doc.kind}/${doc.metadata?.name} has apiVersion, kind and name`)
  }
  const images = new Set(containers.map((c) => c.image))
  t.equal(images.size, 1, 'the Job migrates with the same image the hub runs')
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'))
  const image = (kustomization.images ?? []).find((i: Obj) => i.name === hub.image)
  t.equal(image?.newTag, pkg.version, "the kustomization's image tag is the package's version")
})

t.test('probes hit routes that a real hub answers with 200', async (t) => {
  const probes = { startup: hub.startupProbe, readiness: hub.readinessProbe, liveness: hub.livenessProbe }
  t.equal(probes.readiness?.httpGet?.path, '/readyz', 'readiness is /readyz (it turns 503 while draining)')
  t.equal(probes.liveness?.httpGet?.path, '/healthz', 'liveness is /healthz (never 503 while draining)')
  const h = await startTestHub({ name: 'pglite+ws', store: 'pglite', transport: 'ws' })
  t.teardown(() => h.stop())
  for (const [kind, probe] of Object.entries(probes)) {
    if (!probe) continue
    const res = await fetch(h.url + probe.httpGet.path)
    t.equal(res.status, 200, `${kind} probe GET ${probe.httpGet.path} answers 200`)
  }
  t.equal((await fetch(`${h.url}/no-such-probe`)).status, 404, 'and the hub does not answer 200 to any path')
  const scrape = deployment.spec.template.metadata.annotations ?? {}
  t.equal(scrape['prometheus.io/scrape'], 'true', 'pods are marked for Prometheus')
  t.equal(scrape['prometheus.io/port'], String(containerPort.containerPort), 'on the container port')
  const res = await fetch(h.url + scrape['prometheus.io/path'])
  t.equal(res.status, 200, `the scrape path ${scrape['prometheus.io/path']} answers 200`)
  t.match(await res.text(), /^synchub_sockets /m, "with the hub's metrics")
})

t.test('ports agree: container, PORT, probes, Service and the image', async (t) => {
  t.ok(containerPort, 'the hub container has a port named http')
  const port = containerPort.containerPort
  t.equal(effectiveEnv(hub, 'PORT') ?? String(ConfigEnv.shape.PORT.parse(undefined)), String(port), 'the hub listens on the container port')
  for (const probe of [hub.startupProbe, hub.readinessProbe, hub.livenessProbe].filter(Boolean)) {
    t.ok(probe.httpGet.port === 'http' || probe.httpGet.port === port, `probe ${probe.httpGet.path} targets the container port`)
  }
  const svcPort = service.spec.ports[0]
  t.equal(svcPort.port, 80)
  t.ok(svcPort.targetPort === 'http' || svcPort.targetPort === port, 'the Service targets the container port')
  t.not(service.spec.sessionAffinity ?? 'None', 'ClientIP', 'no session affinity: nodes are stateless')
  t.same(dockerStep('EXPOSE'), [String(port)], 'the image exposes the container port')
})

t.test('the Service, PDB and HPA select the hub pods, and only them', async (t) => {
  const hubLabels = deployment.spec.template.metadata.labels
  const jobLabels = job.spec.template.metadata.labels
  const matches = (selector: Obj, labels: Obj) => Object.entries(selector).every(([k, v]) => labels[k] === v)
  t.ok(matches(deployment.spec.selector.matchLabels, hubLabels), "the Deployment's selector matches its pods")
  t.ok(matches(service.spec.selector, hubLabels), 'the Service selects hub pods')
  t.notOk(matches(service.spec.selector, jobLabels), 'and not the migration pod')
  t.ok(matches(pdb.spec.selector.matchLabels, hubLabels), 'the PDB selects hub pods')
  t.notOk(matches(pdb.spec.selector.matchLabels, jobLabels), 'and not the migration pod')
  t.equal(hpa.apiVersion, 'autoscaling/v2')
  t.same(
    { apiVersion: hpa.spec.scaleTargetRef.apiVersion, kind: hpa.spec.scaleTargetRef.kind, name: hpa.spec.scaleTargetRef.name },
    { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name },
    'the HPA scales the Deployment, by name',
  )
  t.ok(
    hpa.spec.metrics.some((m: Obj) => m.type === 'Resource' && m.resource.name === 'cpu' && m.resource.target.type === 'Utilization'),
    'on CPU utilisation',
  )
  t.ok(hub.resources?.requests?.cpu, 'which needs a CPU request')
  t.equal(deployment.spec.replicas, undefined, 'the Deployment leaves the replica count to the HPA')
  const minReplicas = hpa.spec.minReplicas
  t.ok(minReplicas >= 2, 'at least two hub pods')
  if (pdb.spec.maxUnavailable !== undefined) t.ok(pdb.spec.maxUnavailable >= 1 && pdb.spec.maxUnavailable < minReplicas, 'the PDB allows one disruption at a time')
  else t.ok(pdb.spec.minAvailable >= 1 && pdb.spec.minAvailable < minReplicas, 'the PDB leaves room for one disruption')
})

t.test('every variable the manifests set is a hub setting, from the right place', async (t) => {
  const named: [string, string][] = [
    ...Object.keys(configData).map((n): [string, string] => [n, 'ConfigMap']),
    ...Object.keys(secretData).map((n): [string, string] => [n, 'Secret']),
    ...containers.flatMap((c) => (c.env ?? []).map((e: Obj): [string, string] => [e.name, `container ${c.name}`])),
  ]
  for (const [name, where] of named) t.ok(settingNames.has(name), `${where}: ${name} is in ConfigEnv`)
  for (const { arg } of docker.runtime.filter((s) => s.op === 'ENV' && s.arg.startsWith('SYNCHUB_'))) {
    t.ok(settingNames.has(arg.split(/[=\s]/)[0]), `Dockerfile: ${arg} is in ConfigEnv`)
  }
  const envOf = (c: Obj, name: string) => (c.env ?? []).find((e: Obj) => e.name === name)
  for (const name of ['DATABASE_URL', 'REDIS_URL', 'SYNCHUB_SECRET']) {
    t.equal(envOf(hub, name)?.valueFrom?.secretKeyRef?.name, secret.metadata.name, `the hub's ${name} comes from the Secret`)
    t.ok(name in secretData, `the example Secret has ${name}`)
    t.notOk(name in configData, `${name} is not in the ConfigMap`)
  }
  for (const name of ['DATABASE_URL', 'SYNCHUB_SECRET']) {
    t.equal(envOf(migrator, name)?.valueFrom?.secretKeyRef?.name, secret.metadata.name, `the Job's ${name} comes from the Secret`)
  }
  t.equal(envOf(hub, 'SYNCHUB_NODE_ID')?.valueFrom?.fieldRef?.fieldPath, 'metadata.name', 'the node id is the pod name')
  for (const c of containers) {
    for (const ref of c.envFrom ?? []) {
      if (ref.configMapRef) t.equal(ref.configMapRef.name, configMap.metadata.name, `${c.name} reads the example ConfigMap`)
      if (ref.secretRef) t.equal(ref.secretRef.name, secret.metadata.name, `${c.name} reads the example Secret`)
    }
    t.ok((c.envFrom ?? []).some((r: Obj) => r.configMapRef), `${c.name} takes its settings from the ConfigMap`)
    for (const e of c.env ?? []) {
      const ref = e.valueFrom?.secretKeyRef
      if (ref) t.ok(ref.key in secretData, `${c.name}: the Secret has the key ${ref.key}`)
    }
  }
})

t.test("the ConfigMap's values pass the hub's configuration check", async (t) => {
  for (const [k, v] of Object.entries(configData)) t.type(v, 'string', `${k} is a string (Kubernetes refuses numbers)`)
  const parsed = ConfigEnv.safeParse(configData)
  t.ok(parsed.success, parsed.success ? 'ConfigEnv accepts it' : parsed.error.message)
  // The whole configuration a pod would load, with real-looking secrets in place of the examples.
  const env = {
    ...configData,
    PORT: effectiveEnv(hub, 'PORT'),
    SYNCHUB_NODE_ID: 'synchub-6d9f7c9b8-x2x4q',
    DATABASE_URL: secretData.DATABASE_URL,
    REDIS_URL: secretData.REDIS_URL,
    SYNCHUB_SECRET: 'x'.repeat(48),
  }
  t.doesNotThrow(() => loadConfig(env), 'loadConfig accepts the whole pod environment')
  for (const name of ['DATABASE_URL', 'REDIS_URL'] as const) {
    t.ok(ConfigEnv.shape[name].safeParse(secretData[name]).success, `the example ${name} has the form the hub accepts`)
  }
  t.notOk(
    ConfigEnv.shape.SYNCHUB_SECRET.safeParse(secretData.SYNCHUB_SECRET).success,
    'the placeholder SYNCHUB_SECRET is refused, so an unedited example cannot run with a published key',
  )
})

t.test('the grace period outlasts the preStop sleep plus the drain deadline', async (t) => {
  const drainMs = Number(configData.SYNCHUB_DRAIN_DEADLINE_MS ?? ConfigEnv.shape.SYNCHUB_DRAIN_DEADLINE_MS.parse(undefined))
  t.ok(drainMs > 0, `drain deadline ${drainMs} ms`)
  const preStop = hub.lifecycle?.preStop
  const sleepSec = preStop?.sleep ? Number(preStop.sleep.seconds) : Number(/^sleep$/.test(preStop?.exec?.command?.[0]) ? preStop.exec.command[1] : NaN)
  t.ok(sleepSec > 0, `preStop sleeps ${sleepSec} s before SIGTERM`)
  const graceSec = deployment.spec.template.spec.terminationGracePeriodSeconds
  t.ok(graceSec * 1000 > drainMs + sleepSec * 1000, `terminationGracePeriodSeconds ${graceSec} s > ${drainMs} ms drain + ${sleepSec} s preStop`)
})

t.test('pods run as a fixed non-root user on a read-only root filesystem', async (t) => {
  const uids = new Set<number>()
  for (const [i, c] of containers.entries()) {
    const pod = podSpecs[i].securityContext ?? {}
    const sc = { ...pod, ...c.securityContext }
    t.equal(sc.runAsNonRoot, true, `${c.name}: runAsNonRoot`)
    t.ok(Number.isInteger(sc.runAsUser) && sc.runAsUser > 0, `${c.name}: a fixed non-root uid`)
    uids.add(sc.runAsUser)
    t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${c.name}: read-only root filesystem`)
    t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${c.name}: no privilege escalation`)
    t.ok(c.securityContext?.capabilities?.drop?.includes('ALL'), `${c.name}: drops all capabilities`)
    t.notOk(c.securityContext?.capabilities?.add?.length, `${c.name}: adds none back`)
    t.equal(sc.seccompProfile?.type, 'RuntimeDefault', `${c.name}: seccomp RuntimeDefault`)
    // Node and its libraries write to the OS temp dir: it must be a writable emptyDir.
    const tmp = (c.volumeMounts ?? []).find((m: Obj) => m.mountPath === '/tmp')
    const volume = (podSpecs[i].volumes ?? []).find((v: Obj) => v.name === tmp?.name)
    t.ok(volume?.emptyDir, `${c.name}: /tmp is an emptyDir`)
    t.notOk(tmp?.readOnly, `${c.name}: and writable`)
  }
  t.equal(uids.size, 1, 'the hub and the Job run as the same uid')
  const [user] = dockerStep('USER')
  t.equal(Number(user?.split(':')[0]), [...uids][0], "and it is the image's USER")
})

t.test('the image runs the synchub command; the Deployment serves and the Job migrates', async (t) => {
  t.same(JSON.parse(dockerStep('ENTRYPOINT')[0] ?? 'null'), ['node', 'bin/synchub.js'], 'ENTRYPOINT')
  t.same(JSON.parse(dockerStep('CMD')[0] ?? 'null'), ['serve'], 'CMD')
  t.equal(hub.command, undefined, "the hub keeps the image's ENTRYPOINT")
  t.ok(hub.args === undefined || (hub.args.length === 1 && hub.args[0] === 'serve'), 'and serves')
  t.equal(migrator.command, undefined, "the Job keeps the image's ENTRYPOINT")
  t.same(migrator.args, ['migrate'], 'and runs `synchub migrate`')
  t.ok(['Never', 'OnFailure'].includes(job.spec.template.spec.restartPolicy), 'a Job restart policy')
  // The commands must be ones the CLI knows: ask it, as the container would.
  const help = spawnSync(process.execPath, [`${ROOT}bin/synchub.js`, 'help'], { encoding: 'utf8', env: { PATH: process.env.PATH } })
  t.equal(help.status, 0, '`synchub help` runs')
  for (const command of ['serve', 'migrate']) t.match(help.stdout, new RegExp(`^\\s+${command}\\s`, 'm'), `synchub knows ${command}`)
})

t.test('the Dockerfile builds the hub in one stage and runs the compiled output on production dependencies', async (t) => {
  t.match(docker.from.at(-1), /^node:20-bookworm-slim\b/, 'the runtime is node:20-bookworm-slim (glibc for uWebSockets.js)')
  t.ok(docker.from.length >= 3, 'multi-stage: build, deps, runtime')
  t.ok(docker.all.some((s) => s.op === 'RUN' && /npm run build\b/.test(s.arg)), 'a stage runs `npm run build`')
  t.ok(docker.all.some((s) => s.op === 'RUN' && /npm ci\b.*--omit=dev/.test(s.arg)), 'dependencies from `npm ci --omit=dev`')
  const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8'))
  t.notOk(pkg.dependencies.tsx, 'tsx is not a production dependency (the hub runs compiled)')
  t.ok(pkg.devDependencies.tsx, 'it stays a development and test tool')
  t.ok(docker.runtime.some((s) => s.op === 'COPY' && /^--from=build\s+\/app\/dist\s+\.\/dist$/.test(s.arg)), 'the runtime takes dist/ from the build stage')
  const copied = docker.runtime
    .filter((s) => s.op === 'COPY' && !s.arg.startsWith('--from'))
    .flatMap((s) => s.arg.split(/\s+/).slice(0, -1))
  for (const src of copied) t.ok(existsSync(ROOT + src), `COPY ${src}: it exists`)
  for (const needed of ['bin', 'package.json']) t.ok(copied.includes(needed), `the image has ${needed}`)
  for (const source of ['src', 'protocol']) t.notOk(copied.includes(source), `the runtime has no ${source}/ (TypeScript)`)
  const built = docker.all.filter((s) => s.op === 'COPY' && !s.arg.startsWith('--from')).flatMap((s) => s.arg.split(/\s+/).slice(0, -1))
  for (const needed of ['src', 'protocol', 'migrations', 'scripts', 'tsconfig.build.json']) t.ok(built.includes(needed), `the build stage has ${needed}`)
  const ignored = readFileSync(`${ROOT}.dockerignore`, 'utf8').split('\n').map((l) => l.trim())
  t.ok(ignored.includes('node_modules'), "the host's node_modules stay out of the build context")
  t.ok(ignored.includes('.env'), 'and so do local secrets')
  for (const src of built) t.notOk(ignored.includes(src), `${src} is not ignored`)
})

t.test("the image's files alone run the hub: bin/, dist/ and package.json, without TypeScript or tsx", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'synchub-image-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  for (const part of ['bin', 'dist', 'package.json']) cpSync(ROOT + part, join(dir, part), { recursive: true })
  // The production modules without tsx: a loader could not sneak in.
  mkdirSync(join(dir, 'node_modules'))
  for (const name of readdirSync(`${ROOT}node_modules`)) if (name !== 'tsx' && name !== '.bin') symlinkSync(`${ROOT}node_modules/${name}`, join(dir, 'node_modules', name))
  const env = { PATH: process.env.PATH, SYNCHUB_DATA_DIR: join(dir, 'data') }
  const migrate = spawnSync(process.execPath, ['bin/synchub.js', 'migrate'], { cwd: dir, encoding: 'utf8', env })
  t.equal(migrate.status, 0, `synchub migrate ran from dist/: ${migrate.stderr.slice(-300)}`)
  t.match(migrate.stdout, /applied: 0001_init/, 'the migrations travel with dist/')
  t.notOk(existsSync(join(dir, 'src')), 'no TypeScript sources in the image')
})

// @kubernetes/client-node's informer on ConfigMaps against `kube-chaos serve` (URL in
// KUBE_URL), restarted after an error the way client-node's README does it. After every
// change it writes the informer's cache to CACHE_FILE (`namespace/name resourceVersion`
// lines) for the server's no_event_loss; prints `started` once the first list is in.
import * as fs from 'node:fs';
import * as k8s from '@kubernetes/client-node';

const kc = new k8s.KubeConfig();
kc.loadFromOptions({
  clusters: [{ name: 'c', server: process.env.KUBE_URL, skipTLSVerify: true }],
  users: [{ name: 'u' }],
  contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
  currentContext: 'x',
});
const api = kc.makeApiClient(k8s.CoreV1Api);
const namespace = 'default';
const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/configmaps`,
  () => api.listNamespacedConfigMap({ namespace }));
const writeCache = () => {
  const lines = informer.list().map((o) => `${o.metadata.namespace}/${o.metadata.name} ${o.metadata.resourceVersion}\n`);
  fs.writeFileSync(`${process.env.CACHE_FILE}.tmp`, lines.sort().join(''));
  fs.renameSync(`${process.env.CACHE_FILE}.tmp`, process.env.CACHE_FILE);
};
for (const verb of ['add', 'update', 'delete', 'connect']) informer.on(verb, writeCache);
informer.on('error', (e) => {
  console.log(`informer error: ${e?.code ?? e?.message ?? e}`);
  setTimeout(() => informer.start().catch((err) => console.log(`restart failed: ${err}`)), 500);
});
process.on('unhandledRejection', (e) => console.log(`unhandled: ${e}`));
await informer.start();
writeCache();
console.log('started');
setInterval(() => {}, 1000);

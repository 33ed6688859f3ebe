// @kubernetes/client-node's informer against `kube-chaos serve` (URL in KUBE_URL): the initial
// list, then add/update/delete from the watch, in order. Prints OK only if all were seen.
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
await api.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'pre' }, data: { k: '0' } } });
const informer = k8s.makeInformer(kc, `/api/v1/namespaces/${namespace}/configmaps`,
  () => api.listNamespacedConfigMap({ namespace }));
const seen = [];
for (const verb of ['add', 'update', 'delete']) {
  informer.on(verb, (o) => seen.push(`${verb} ${o.metadata.name} ${o.data?.k}`));
}
let stopping = false;
informer.on('error', (e) => {
  if (stopping) return; // stop() aborts the open watch
  console.error('informer error', e);
  process.exit(1);
});
process.on('unhandledRejection', (e) => {
  if (stopping && e?.type === 'aborted') return;
  console.error('unhandled', e);
  process.exit(1);
});
await informer.start();
const until = async (n) => {
  for (let i = 0; i < 150 && seen.length < n; i++) await new Promise((r) => setTimeout(r, 100));
};
await until(1);
await api.createNamespacedConfigMap({ namespace, body: { metadata: { name: 'a' }, data: { k: '1' } } });
await until(2);
const a = await api.readNamespacedConfigMap({ name: 'a', namespace });
a.data.k = '2';
await api.replaceNamespacedConfigMap({ name: 'a', namespace, body: a });
await until(3);
await api.deleteNamespacedConfigMap({ name: 'a', namespace });
await until(4);
stopping = true;
await informer.stop().catch(() => {});
const want = ['add pre 0', 'add a 1', 'update a 2', 'delete a 2'];
if (JSON.stringify(seen) !== JSON.stringify(want)) {
  console.error('seen', seen, 'want', want);
  process.exit(1);
}
console.log('OK');
process.exit(0);

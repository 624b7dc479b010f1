// The conformance plugin in JavaScript: the same behaviour, byte for byte, as
// guests/conformance-rust (see there).
import {
  exportPlugin, report, topology, node, metric, control, metadataTemplate, metricTemplate, shortcut, arg,
  ids, hostInfo, procfs, docker, HostError, unknownNode, unknownControl, invalidArgument, controlFailed,
} from '../../guest-sdk/js/scope-plugin.js';

let count = 0n;

function render() {
  // /proc/kcore is never readable: the typed error must come through.
  let procfsState = 'ok';
  try {
    procfs.read('kcore');
  } catch (error) {
    procfsState = error instanceof HostError && error.kind === 'denied' ? 'denied' : 'other-error';
  }
  // Docker is not granted to it: the typed `denied` must come through.
  let dockerState = 'ok';
  try {
    docker.containers(false);
  } catch (error) {
    dockerState = error instanceof HostError && error.kind === 'denied' ? 'denied' : 'other-error';
  }
  const hostNode = node(ids.thisHost(), {
    latest: { conformance_count: count.toString(), conformance_procfs: procfsState, conformance_docker: dockerState,
      conformance_greeting: hostInfo.setting('greeting', 'unset') },
    metrics: [metric('conformance_metric', [[hostInfo.now(), Number(count)]], { min: 0, max: 1000 })],
    sets: { conformance_set: ['alpha', 'beta'] },
    activeControls: ['reset', 'fail'],
  });
  return report(topology('host', {
    nodes: [hostNode],
    controls: [
      control('reset', 'Reset the counter', 'fa-undo', { rank: 1 }),
      control('fail', 'Fail on purpose', 'fa-bomb', { rank: 2, confirmation: 'Really fail?' }),
    ],
    metadataTemplates: [metadataTemplate('conformance_count', 'Count', { dataType: 'number', priority: 1.0 })],
    metricTemplates: [metricTemplate('conformance_metric', 'Count metric', { format: 'integer', priority: 2.0 })],
  }));
}

export const handler = exportPlugin({
  describe: () => ({ label: 'Conformance (JavaScript)', description: 'The same plugin in every language: a counter, a reset control, typed errors' }),
  report: () => render(),
  control(request) {
    if (request.nodeId !== ids.thisHost()) throw unknownNode(request.nodeId);
    switch (request.control) {
      case 'reset':
        count = 0n;
        hostInfo.info('conformance: reset');
        break;
      case 'add': {
        const n = arg(request, 'n') ?? '';
        // Digits only, so every language accepts exactly the same strings.
        if (!/^[0-9]{1,9}$/.test(n)) throw invalidArgument(`n must be a whole number, got '${n}'`);
        count += BigInt(n);
        break;
      }
      case 'fail':
        throw controlFailed('failing on purpose');
      case 'raise': {
        // Not in the reference: an uncaught exception's status text (tests/guest_errors.rs).
        const what = arg(request, 'what') ?? '';
        if (what === 'type-error') return null.missing;
        if (what === 'host-error') docker.containers(false);
        throw invalidArgument(`what must be type-error or host-error, got '${what}'`);
      }
      default:
        throw unknownControl(request.control);
    }
    return shortcut(render());
  },
});

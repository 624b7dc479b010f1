// Write Weave Scope plugins in JavaScript, as WebAssembly components for scope-wasm.
//
//   import { exportPlugin, node, topology, report, ids } from './scope-plugin.js';
//
//   export const handler = exportPlugin({
//     describe: () => ({ label: 'Hello', description: 'Says hello on the host node' }),
//     report() {
//       return report(topology('host', { nodes: [node(ids.thisHost(), { latest: { greeting: 'hello' } })] }));
//     },
//   });
//
// Build: componentize-js app.js --wit wit --world-name plugin -d http -d fetch-event -o app.wasm
//
// The values are plain objects shaped as the types generated from wit/ (see
// `types/` after `make js-types`: camelCase fields, kebab-case enum strings,
// variants as { tag, val }, u64 as BigInt). These helpers fill in defaults.
// Errors are exceptions: throw anything from report() and it becomes the
// plugin's status, as `TypeError: message` (a plain Error or a HostError: its
// message alone); throw a ControlError from control(). Host capabilities
// throw HostError, whose `kind` is the WIT case ('denied', 'not-found', ...).

import * as host from 'scope:plugin/host@0.1.0';
import * as procfsWit from 'scope:plugin/procfs@0.1.0';
import * as dockerWit from 'scope:plugin/docker@0.1.0';
import * as trafficWit from 'scope:plugin/traffic@0.1.0';
import * as httpTrafficWit from 'scope:plugin/http-traffic@0.1.0';

export class ControlError extends Error {
  /** kind: 'unknown-control' | 'unknown-node' | 'invalid-argument' | 'failed' */
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

export const unknownControl = (message) => new ControlError('unknown-control', message);
export const unknownNode = (message) => new ControlError('unknown-node', message);
export const invalidArgument = (message) => new ControlError('invalid-argument', message);
export const controlFailed = (message) => new ControlError('failed', message);

// What each capability is called in a sentence.
const CAPABILITY_NAMES = { docker: 'Docker', procfs: 'procfs', traffic: 'traffic shaping', 'http-traffic': 'HTTP traffic counters' };

// The sentence per capability and kind; `$m` is the host's message.
const SENTENCES = {
  'docker/unavailable': 'Docker Engine unavailable: $m',
  'docker/timeout': "Docker Engine did not answer within the call's time budget",
  'docker/not-found': 'Docker object not found: $m',
  'docker/failed': 'Docker Engine error: $m',
  'procfs/not-found': 'procfs: $m does not exist (no such file, or the process has exited)',
  'procfs/too-large': "procfs: the file is larger than the host's limit of $m bytes",
  'procfs/io': 'procfs read failed: $m',
  'traffic/not-found': 'traffic shaping: container not found: $m',
  'traffic/unsupported': 'traffic shaping is not supported on this host: $m',
  'traffic/failed': 'traffic shaping failed: $m',
  'traffic/timeout': "traffic shaping did not finish within the call's time budget",
  'http-traffic/unavailable': 'HTTP traffic counters unavailable on this host: $m',
  'http-traffic/timeout': "HTTP traffic counters did not answer within the call's time budget",
};

/** A capability error as a sentence: the capability, the cause and, where there
 *  is one, the fix (the same words as the Rust SDK). */
export function describeHostError(capability, kind, message) {
  const what = CAPABILITY_NAMES[capability] ?? capability;
  if (kind === 'denied') {
    const notGranted = `${capability} is not granted`;
    // The host's text names the plugin, which the status already starts with.
    const colon = message.indexOf(': ');
    if (message.startsWith('plugin ') && colon > 0 && message.slice(colon + 2).startsWith(notGranted)) {
      message = message.slice(colon + 2);
    }
    if (message.startsWith(notGranted)) {
      return `${what} denied: ${capability} is not granted to this plugin (add "${capability}" to its grants in the config)`;
    }
    return `${what} denied: ${message}`;
  }
  const sentence = SENTENCES[`${capability}/${kind}`];
  if (sentence === undefined) return message ? `${what} error (${kind}): ${message}` : `${what} error (${kind})`;
  return sentence.replace('$m', () => message);
}

/** A capability's typed error: `kind` the WIT case ('denied', 'not-found', ...),
 *  `detail` the host's text, `capability` which one ('docker', 'procfs', ...).
 *  Its message is the sentence shown as the plugin's status. */
export class HostError extends Error {
  constructor(kind, message, capability = '') {
    super(capability ? describeHostError(capability, kind, message ?? '') : message ? `${kind}: ${message}` : kind);
    this.name = 'HostError';
    this.kind = kind;
    this.detail = message ?? '';
    this.capability = capability;
  }
}

/** Calls a capability import; its typed error is thrown as a HostError. */
export function call(fn, ...args) {
  return callAs('', fn, ...args);
}

function callAs(capability, fn, ...args) {
  try {
    return fn(...args);
  } catch (error) {
    const payload = error?.payload;
    if (payload && typeof payload.tag === 'string') {
      throw new HostError(payload.tag, payload.val == null ? '' : String(payload.val), capability);
    }
    throw error;
  }
}

/** The `handler` export, running `plugin` (an object with describe, report and control). */
export function exportPlugin(plugin) {
  return {
    describe: () => plugin.describe(),
    report() {
      let result;
      try {
        result = plugin.report();
      } catch (error) {
        throw errorText(error);
      }
      if (!result || !Array.isArray(result.topologies)) {
        throw `TypeError: report() must return a report (report(...)), not ${result === null ? 'null' : typeof result}`;
      }
      return result;
    },
    control(request) {
      if (!plugin.control) throw { tag: 'unknown-control', val: request.control };
      try {
        return plugin.control(request);
      } catch (error) {
        if (error instanceof ControlError) throw { tag: error.kind, val: error.message };
        throw { tag: 'failed', val: errorText(error) };
      }
    },
  };
}

// Longest status text a failure makes; the rest is cut off.
const MAX_STATUS = 1024;

/** An uncaught exception as the plugin's status: `TypeError: message`; a
 *  HostError's or ControlError's sentence, or a plain Error's message, as it is. */
export function errorText(error) {
  let text;
  if (error instanceof HostError || error instanceof ControlError || (error instanceof Error && error.name === 'Error')) {
    text = error.message || error.name;
  } else if (error instanceof Error) {
    text = error.message ? `${error.name}: ${error.message}` : error.name;
  } else {
    text = `uncaught ${typeof error}: ${String(error)}`;
  }
  return text.length <= MAX_STATUS ? text : `${text.slice(0, MAX_STATUS - 3)}...`;
}

export const report = (...topologies) => ({ topologies });

export function topology(kind, { nodes = [], controls = [], metadataTemplates = [], metricTemplates = [], tableTemplates = [] } = {}) {
  return { kind, nodes, controls, metadataTemplates, metricTemplates, tableTemplates };
}

/** A node; `latest` values are observed now, `sets` and `parents` map a key to a list. */
export function node(id, { latest = {}, metrics = [], sets = {}, parents = {}, activeControls = [] } = {}) {
  return {
    id,
    latest: Object.entries(latest).map(([key, value]) => ({ key, value: String(value), timestamp: undefined })),
    metrics,
    sets: Object.entries(sets).map(([key, values]) => ({ key, values })),
    parents: Object.entries(parents).map(([topology, ids]) => ({ topology, ids })),
    activeControls,
  };
}

/** A time series of [timestamp ms, value] pairs, drawn between min and max. */
export function metric(key, samples, { min, max }) {
  return { key, samples: samples.map(([timestamp, value]) => ({ timestamp: BigInt(timestamp), value: Number(value) })), min, max };
}

export function control(id, human, icon, { rank = 0, confirmation = undefined } = {}) {
  return { id, human, icon, confirmation, rank };
}

export function metadataTemplate(id, label, { priority = 0, dataType = 'text', from = 'latest', truncate = 0 } = {}) {
  return { id, label, truncate, dataType, priority, from };
}

export function metricTemplate(id, label, { format = 'number', group = '', priority = 0 } = {}) {
  return { id, label, format, group, priority };
}

/** Key/value rows from the `latest` entries that start with `prefix`. */
export function propertyList(id, label, prefix, { fixedRows = [] } = {}) {
  return { id, label, prefix, type: 'property-list', columns: [], fixedRows };
}

/** Rows and columns from the `latest` entries `<prefix><row>___<column>`. */
export function multicolumnTable(id, label, prefix, { columns = [], fixedRows = [] } = {}) {
  return {
    id, label, prefix, type: 'multicolumn-table',
    columns: columns.map(([cid, clabel]) => ({ id: cid, label: clabel, dataType: 'text' })),
    fixedRows,
  };
}

/** A control's answer that the probe merges at once. */
export const shortcut = (report) => ({ shortcutReport: report });
export const done = () => ({ shortcutReport: undefined });

/** The value of a control argument, or undefined. */
export function arg(request, key) {
  const found = request.args.find(([k]) => k === key);
  return found ? found[1] : undefined;
}

export const ids = {
  hostNode: (hostname) => `${hostname};<host>`,
  thisHost: () => `${host.hostname()};<host>`,
  container: (id) => `${id};<container>`,
  containerIdOf: (nodeId) => (nodeId.endsWith(';<container>') ? nodeId.slice(0, -';<container>'.length) : undefined),
  containerImage: (name) => `${name};<container_image>`,
  process: (hostname, pid) => `${hostname};${pid}`,
  pod: (uid) => `${uid};<pod>`,
};

export const hostInfo = {
  hostname: () => host.hostname(),
  /** Milliseconds since the Unix epoch, as a BigInt. */
  now: () => host.now(),
  log: (level, message) => host.log(level, message),
  /** The operator's settings for this plugin (`settings` in its config section), as an object. */
  settings: () => Object.fromEntries(host.settings()),
  /** One setting, or `fallback` if the operator did not set it. */
  setting: (key, fallback) => host.setting(key) ?? fallback,
  info: (message) => host.log('info', message),
  warn: (message) => host.log('warn', message),
  error: (message) => host.log('error', message),
};

export const procfs = {
  /** A file relative to /proc; throws HostError ('denied', 'not-found', 'too-large', 'io'). */
  read: (path) => callAs('procfs', procfsWit.read, path),
  pids: () => callAs('procfs', procfsWit.listPids),
};

// The other capabilities, granted per plugin by the operator (a call without
// the grant throws HostError 'denied').
export const docker = {
  /** Containers (running ones only unless `all`), as typed records. */
  containers: (all = false) => callAs('docker', dockerWit.listContainers, all),
  inspect: (id) => callAs('docker', dockerWit.inspectContainer, id),
  images: () => callAs('docker', dockerWit.listImages),
  /** The Engine's JSON for an allow-listed read-only path (`/version`, ...). */
  get: (path) => callAs('docker', dockerWit.get, path),
};

export const traffic = {
  status: (containerId) => callAs('traffic', trafficWit.status, containerId),
  setDelayLoss: (containerId, latencyMs, lossPercent) => callAs('traffic', trafficWit.setDelayLoss, containerId, latencyMs, lossPercent),
  setRate: (containerId, rateKbit) => callAs('traffic', trafficWit.setRate, containerId, BigInt(rateKbit)),
  clear: (containerId) => callAs('traffic', trafficWit.clear, containerId),
};

export const httpTraffic = {
  /** Every live process's counters ({ pid, requests, responses }); they only grow. */
  counters: () => callAs('http-traffic', httpTrafficWit.counters),
};

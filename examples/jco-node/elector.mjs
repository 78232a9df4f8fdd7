// One election node in Node.js: the unmodified s3-election component, transpiled by jco
// (`jco transpile s3_election.wasm -o out`), running on @bytecodealliance/preview2-shim.
//
//   node elector.mjs --component out/s3election.js --bucket B --election E --node-id ID \
//        [--prefix P] [--lease 15s|1500ms] [--metadata M]
//
// The store comes from AWS_ENDPOINT_URL_S3 (or AWS_ENDPOINT_URL), AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_REGION, as for `host-test node`. Prints one JSON line per tick
// in the same shape as `host-test node`; on SIGTERM or Ctrl-C it resigns, so a leader hands
// over at once.
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";

const args = {};
for (let i = 2; i < process.argv.length; i += 2) {
  const flag = process.argv[i];
  if (!flag.startsWith("--") || i + 1 >= process.argv.length) fail(`bad argument ${flag}`);
  args[flag.slice(2)] = process.argv[i + 1];
}
function fail(message) {
  console.error(`elector.mjs: ${message}`);
  process.exit(2);
}
function need(name) {
  return args[name] ?? fail(`--${name} is required`);
}
// `15s`, `1500ms` (as `host-test node` takes them), in milliseconds.
function millis(value) {
  const m = /^(\d+)(ms|s|m)$/.exec(value);
  if (!m) fail(`--lease ${value}: say 15s or 1500ms`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60000 }[m[2]];
}
function env(name, fallback) {
  const v = process.env[name] ?? fallback;
  if (v === undefined) fail(`${name} is not set`);
  return v;
}

const { election } = await import(pathToFileURL(resolve(need("component"))).href);

const s3 = {
  endpoint: env("AWS_ENDPOINT_URL_S3", process.env.AWS_ENDPOINT_URL),
  region: env("AWS_REGION", "us-east-1"),
  bucket: need("bucket"),
  pathStyle: true,
  credentials: {
    accessKeyId: env("AWS_ACCESS_KEY_ID"),
    secretAccessKey: env("AWS_SECRET_ACCESS_KEY"),
    sessionToken: process.env.AWS_SESSION_TOKEN,
  },
  unquotedEtags: false,
};
const config = {
  election: { name: need("election"), keyPrefix: args.prefix ?? "" },
  nodeId: need("node-id"),
  metadata: args.metadata ?? "",
  stateless: false,
  // Learn the store's quirks (Ceph wants bare ETags) and refuse one without conditional writes.
  probeStore: true,
  // Unset timings take the defaults; only the lease is given here.
  timings: args.lease === undefined ? undefined : { leaseMs: millis(args.lease) },
  quorum: undefined,
};

// A WIT `result` error arrives as a thrown ComponentError whose payload is the variant.
function call(f) {
  try {
    return { ok: f() };
  } catch (e) {
    if (e && e.payload) return { err: e.payload };
    throw e;
  }
}

function describe(error) {
  const v = error.val;
  if (v && typeof v === "object" && "status" in v) return `${error.tag}: ${v.status} ${v.code}: ${v.message}`;
  if (v && typeof v === "object" && "field" in v) return `${error.tag}: ${v.field}: ${v.problem}`;
  return v === undefined ? error.tag : `${error.tag}: ${v}`;
}

function eventText(e) {
  switch (e.tag) {
    case "elected":
      return `elected(term=${e.val})`;
    case "demoted": {
      const r = e.val.reason;
      const reason = r.tag === "lease-lost" && r.val ? `lease-lost to ${r.val}` : r.tag;
      return `demoted(term=${e.val.term}, ${reason})`;
    }
    case "leader-changed":
      return e.val ? `leader-changed(${e.val.nodeId}, term=${e.val.term})` : "leader-changed(none)";
    case "quorum-lost":
      return `quorum-lost(${e.val.fresh}/${e.val.needed})`;
    case "quorum-restored":
      return `quorum-restored(${e.val})`;
    default:
      return e.tag;
  }
}

// The same fields as host-test's Observation.
function observation(answer) {
  const base = { unix_ms: Date.now(), node: config.nodeId };
  if (answer.err) {
    return { ...base, role: "follower", term: null, leader: null, valid_ms: 0, events: [],
             error: describe(answer.err), last_error: null, requests: 0 };
  }
  const s = answer.ok;
  const term = s.fencingToken ?? s.leader?.term;
  return {
    ...base,
    role: s.role,
    term: term === undefined ? null : Number(term),
    leader: s.leader?.nodeId ?? null,
    valid_ms: Number(s.validMs),
    events: s.events.map(eventText),
    error: null,
    last_error: s.lastError ? describe(s.lastError) : null,
    requests: s.requests,
    problems: s.problems,
  };
}

const opened = call(() => election.Elector.open(s3, config));
if (opened.err) {
  console.log(JSON.stringify(observation(opened)));
  process.exit(1);
}
const elector = opened.ok;

let timer;
function tick() {
  const answer = call(() => elector.tick());
  console.log(JSON.stringify(observation(answer)));
  const next = answer.ok ? Number(answer.ok.nextTickMs) : 1000;
  timer = setTimeout(tick, next);
}

function stop() {
  clearTimeout(timer);
  const answer = call(() => elector.resign());
  console.log(JSON.stringify(observation(answer)));
  process.exit(0);
}
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
tick();

// bridge.mjs runs synthesized state machines with aws-local-stepfunctions on
// behalf of `arcbench local run` (its Go parent). Every Task state is
// performed by the parent: this side asks over fd 3 and reads answers on
// fd 4, one JSON object per line. The library runs Distributed Maps inline
// and ignores ItemReader, so each DISTRIBUTED Map is replaced by a Task whose
// handler runs the item processor as separate child executions, as AWS does.
import fs from 'node:fs';
import readline from 'node:readline';
import { StateMachine, ExecutionError, ExecutionTimeoutError, ExecutionAbortedError } from 'aws-local-stepfunctions';

const out = fs.createWriteStream(null, { fd: 3 });
const send = (msg) => out.write(JSON.stringify(msg) + '\n');
const pending = new Map();
let seq = 0;

// Node timers overflow past 2^31 ms; a task without a timeout gets the
// library's 60 s, too short for a real worker. A day is the most a timer holds.
const DAY = 86400;
const MAP_RESOURCE = 'arcbench:distributed-map';
const WAIT_RESOURCE = 'arcbench:wait';
const distributed = new Map(); // state name -> original Map state
const waits = new Map(); // state name -> original Wait state
// AWS's bound on a Wait's seconds.
const MAX_WAIT_SECONDS = 99999999;
// running executions (roots and Map children) by ARN: their abort, so that a
// stopped execution stops its children, as on AWS.
const running = new Map();

// stopTree aborts an execution's running descendants (children are named
// <parent ARN>/<label>:<index>) and asks the parent to terminate their jobs.
function stopTree(arn) {
  for (const [child, exec] of running) {
    if (child.startsWith(arn + '/')) {
      exec.abort();
      running.delete(child);
      send({ t: 'terminate', exec: child });
    }
  }
}

function ask(msg) {
  const id = ++seq;
  send({ ...msg, t: 'call', id });
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

function stepError(e) {
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}

// checkWait is a Wait state, skipped as a local run skips waits, but only
// once its time is what AWS accepts: a SecondsPath to anything but a whole
// number from 0 to 99999999, or a TimestampPath to anything but an ISO 8601
// time, fails the execution with States.Runtime, as on AWS.
async function checkWait(name, input, context) {
  const w = waits.get(name);
  const fail = (what) => { throw stepError({ name: 'States.Runtime', message: `An error occurred while executing the state '${name}'. ${what}` }); };
  if (w.SecondsPath !== undefined) {
    const v = await resolve('InputPath', w.SecondsPath, input, context).catch(() => fail(`The SecondsPath parameter does not reference an input value: ${w.SecondsPath}`));
    if (!Number.isInteger(v) || v < 0 || v > MAX_WAIT_SECONDS) fail(`The SecondsPath parameter does not reference a valid integer number of seconds: ${JSON.stringify(v)}`);
  }
  if (w.TimestampPath !== undefined) {
    const v = await resolve('InputPath', w.TimestampPath, input, context).catch(() => fail(`The TimestampPath parameter does not reference an input value: ${w.TimestampPath}`));
    if (typeof v !== 'string' || Number.isNaN(Date.parse(v))) fail(`The TimestampPath parameter does not reference a valid ISO-8601 timestamp: ${JSON.stringify(v)}`);
  }
  return input;
}

// prepare rewrites a definition in place and collects what the library
// needs to know per state name. What the library would let pass that AWS
// refuses is refused here.
function prepare(def, names) {
  const text = JSON.stringify(def);
  if (text.includes('States.ArrayGetItem(')) {
    // The library answers null for an index out of range; AWS fails the
    // state. Rather than pass what a deployed run would not, refuse it.
    throw new Error('the definition uses States.ArrayGetItem, whose out-of-range index the local interpreter answers with null where AWS fails: compute the value in a handler instead');
  }
  for (const [name, state] of Object.entries(def.States)) {
    names.all.push(name);
    if (state.Type === 'Map') {
      const proc = state.ItemProcessor ?? state.Iterator;
      prepare(proc, names);
      if (proc.ProcessorConfig?.Mode === 'DISTRIBUTED') {
        distributed.set(name, { ...state, ItemProcessor: proc });
        const task = { Type: 'Task', Resource: MAP_RESOURCE, TimeoutSeconds: DAY };
        for (const k of ['InputPath', 'ResultSelector', 'ResultPath', 'OutputPath', 'Retry', 'Catch', 'Next', 'End', 'Comment']) {
          if (k in state) task[k] = state[k];
        }
        def.States[name] = task;
        names.tasks.push(name);
      }
    } else if (state.Type === 'Parallel') {
      state.Branches.forEach((b) => prepare(b, names));
    } else if (state.Type === 'Task') {
      state.TimeoutSeconds ??= DAY;
      names.tasks.push(name);
    } else if (state.Type === 'Wait') {
      waits.set(name, state);
      const task = { Type: 'Task', Resource: WAIT_RESOURCE, TimeoutSeconds: DAY };
      for (const k of ['InputPath', 'OutputPath', 'Next', 'End', 'Comment']) {
        if (k in state) task[k] = state[k];
      }
      def.States[name] = task;
      names.tasks.push(name);
    }
  }
  return names;
}

// resolve evaluates a payload template or path the way a Pass state would,
// against input and a context object.
async function resolve(field, value, input, context) {
  const sm = new StateMachine({ StartAt: 'R', States: { R: { Type: 'Pass', [field]: value, End: true } } }, { validationOptions: { noValidate: true } });
  return sm.run(input, { context }).result;
}

function contextFor(exec) {
  return {
    Execution: { Id: exec.arn, Name: exec.arn.split(':').pop(), RoleArn: exec.roleArn ?? 'arn:aws:iam::000000000000:role/local' },
    StateMachine: { Id: exec.stateMachineArn, Name: exec.stateMachineArn.split(':').pop() },
    // The library never fills $$.State; AWS gives the state's entry time.
    State: { get EnteredTime() { return new Date().toISOString(); }, Name: '', RetryCount: 0 },
  };
}

// execute runs one execution (root or child) and reports its events and end.
async function execute(exec, def, input, names, extraContext = {}) {
  const sm = new StateMachine(def, { validationOptions: { noValidate: true } });
  const handlers = {};
  for (const name of names.tasks) {
    handlers[name] = (taskInput) => {
      if (distributed.has(name)) return runDistributed(exec, name, taskInput, names);
      if (waits.has(name)) return checkWait(name, taskInput, { ...contextFor(exec), ...extraContext });
      return ask({ exec: exec.arn, state: name, input: taskInput });
    };
  }
  const zero = Object.fromEntries(names.all.map((n) => [n, 0]));
  const run = sm.run(input, {
    context: { ...contextFor(exec), ...extraContext },
    overrides: {
      taskResourceLocalHandlers: handlers,
      retryIntervalOverrides: zero,
    },
  });
  running.set(exec.arn, {
    abort: () => run.abort(),
    // StopExecution's error and cause end the execution.
    stop: (error, cause) => { exec.stopped = true; exec.stopError = error || undefined; exec.stopCause = cause || undefined; },
  });
  const events = (async () => {
    for await (const ev of run.eventLogs) {
      const e = { t: 'event', exec: exec.arn, type: ev.type };
      if (ev.state) {
        e.state = ev.state.name;
        e.stateType = distributed.has(ev.state.name) ? 'DistributedMap' : waits.has(ev.state.name) ? 'Wait' : ev.state.type;
        e.inBytes = Buffer.byteLength(JSON.stringify(ev.state.input ?? null));
        if ('output' in ev.state) e.outBytes = Buffer.byteLength(JSON.stringify(ev.state.output ?? null));
      }
      if (ev.Error !== undefined) { e.error = ev.Error; }
      if (ev.retry) e.attempt = ev.retry.attempt;
      send(e);
    }
  })();
  try {
    const output = await run.result;
    await events;
    return { status: 'SUCCEEDED', output };
  } catch (err) {
    await events;
    // However it ended, nothing it started may run on: its jobs are
    // terminated (its own and its children's).
    stopTree(exec.arn);
    send({ t: 'terminate', exec: exec.arn });
    if (err instanceof ExecutionTimeoutError) return { status: 'TIMED_OUT', error: 'States.Timeout', cause: 'execution timed out' };
    if (err instanceof ExecutionAbortedError) return { status: 'ABORTED', error: exec.stopError ?? 'States.Aborted', cause: exec.stopCause ?? 'execution aborted' };
    const c = err instanceof ExecutionError ? err.cause : err;
    return { status: 'FAILED', error: c?.name ?? 'Error', cause: c?.message ?? String(err) };
  } finally {
    running.delete(exec.arn);
  }
}

// runDistributed is one Distributed Map: items from ItemsPath or the
// ItemReader (read by the parent from the local bucket), one child execution
// per item (or batch), MaxConcurrency at once, failures against the tolerance.
async function runDistributed(exec, name, input, names) {
  const map = distributed.get(name);
  let items;
  if (map.ItemReader) {
    const params = await resolve('Parameters', map.ItemReader.Parameters ?? {}, input, contextFor(exec));
    items = await ask({ exec: exec.arn, state: name, kind: 'readItems', input: { ...params, ReaderConfig: map.ItemReader.ReaderConfig ?? {} } });
  } else {
    items = await resolve('InputPath', map.ItemsPath ?? '$', input, contextFor(exec));
  }
  if (!Array.isArray(items)) throw stepError({ name: 'States.Runtime', message: `${name}: items are not an array` });

  let batches = items.map((v, i) => ({ index: i, value: v }));
  const batcher = map.ItemBatcher;
  if (batcher) {
    const size = batcher.MaxItemsPerBatch ?? items.length;
    const grouped = [];
    for (let i = 0; i < items.length; i += size) {
      grouped.push({ index: grouped.length, value: { ...(batcher.BatchInput ?? {}), Items: items.slice(i, i + size) } });
    }
    batches = grouped;
  }

  const label = map.Label ?? name;
  const limit = map.MaxConcurrency > 0 ? map.MaxConcurrency : 1000;
  const tolerated = map.ToleratedFailureCount ?? (map.ToleratedFailurePercentage !== undefined
    ? Math.floor((map.ToleratedFailurePercentage / 100) * batches.length) : 0);
  const results = new Array(batches.length);
  let failed = 0;
  let next = 0;
  let firstFailure;
  // The Map Run stops as soon as it has failed, or its execution stopped:
  // queued children never start, running ones are stopped (AWS does both).
  const over = () => failed > tolerated || exec.stopped || !running.has(exec.arn);
  const worker = async () => {
    while (next < batches.length && !over()) {
      const b = batches[next++];
      const ctx = { Map: { Item: { Index: b.index, Value: b.value } } };
      const childInput = batcher
        ? (map.ItemSelector ? { ...b.value, Items: await Promise.all(b.value.Items.map((v, i) => resolve('Parameters', map.ItemSelector, input, { ...contextFor(exec), Map: { Item: { Index: i, Value: v } } }))) } : b.value)
        : (map.ItemSelector ? await resolve('Parameters', map.ItemSelector, input, { ...contextFor(exec), ...ctx }) : b.value);
      const child = { ...exec, arn: `${exec.arn}/${label}:${String(b.index).padStart(6, '0')}`, parent: exec.arn };
      send({ t: 'child', exec: child.arn, parent: exec.arn, state: name });
      const r = await execute(child, structuredClone(map.ItemProcessor), childInput, names);
      send({ t: 'end', exec: child.arn, ...r, output: undefined });
      if (r.status === 'SUCCEEDED') {
        results[b.index] = r.output;
      } else {
        failed++;
        firstFailure ??= r;
        if (failed > tolerated) stopTree(exec.arn);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, batches.length) }, worker));
  if (failed > tolerated) {
    throw stepError({ name: 'States.ExceedToleratedFailureThreshold', message: `${failed} of ${batches.length} child executions of ${name} failed; first: ${firstFailure.error}: ${firstFailure.cause}` });
  }
  if (map.ResultWriter) {
    const params = await resolve('Parameters', map.ResultWriter.Parameters ?? {}, input, contextFor(exec));
    return ask({ exec: exec.arn, state: name, kind: 'writeResults', input: { ...params, results, failed, total: batches.length } });
  }
  return results;
}

const rl = readline.createInterface({ input: fs.createReadStream(null, { fd: 4 }) });
rl.on('line', async (line) => {
  const m = JSON.parse(line);
  if (m.t === 'answer') {
    const p = pending.get(m.id);
    pending.delete(m.id);
    if (m.error) p.reject(stepError(m.error)); else p.resolve(m.output);
    return;
  }
  if (m.t === 'stop') {
    const exec = running.get(m.exec);
    if (exec) {
      exec.stop(m.error, m.cause);
      exec.abort();
    }
    return;
  }
  if (m.t === 'start') {
    try {
      const def = structuredClone(m.definition);
      const names = prepare(def, { all: [], tasks: [] });
      const exec = { arn: m.executionArn, stateMachineArn: m.stateMachineArn };
      const r = await execute(exec, def, m.input, names);
      send({ t: 'end', exec: m.executionArn, root: true, ...r });
    } catch (err) {
      send({ t: 'end', exec: m.executionArn, root: true, status: 'FAILED', error: 'States.Runtime', cause: String(err?.stack ?? err) });
    }
  }
});
rl.on('close', () => process.exit(0));

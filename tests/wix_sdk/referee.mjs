// Wix's own JavaScript SDK as the referee for the portal's Wix sandbox.
//
// Called by tests/test_wix_sdk_contract.py: reads one JSON request on stdin and writes one
// JSON answer on stdout. Two modes:
//
//   {"mode": "webhooks", "appId", "publicKey", "deliveries": [{"key", "jwt"}]}
//     Registers a handler for every webhook event the SDK modules define, then hands each
//     JWT to client.webhooks.process() exactly as an SDK-based Wix app does. Answers, per
//     delivery, which handlers ran and the envelope each was given (or the SDK's error).
//
//   {"mode": "rest", "baseUrl", "siteId", "apiKey", "pageSize", "oauth": {appId, appSecret,
//    instanceId}, "fields"}
//     Points the SDK's REST calls at the sandbox with a fetch that rewrites Wix's host, and
//     runs Query (page by page) and Get of events, policies and ticket definitions
//     (SALES_DETAILS). Answers with what the SDK returned and every request it made.
//
// The SDK's objects are written as they are, except that Date values become ISO strings
// (JSON.stringify does that): the Python side maps the SDK's names (_id, _createdDate, …)
// back to REST names itself, so a renaming the SDK does not do shows up as a difference.
import { ApiKeyStrategy, AppStrategy, createClient } from '@wix/sdk';
import * as events from '@wix/auto_sdk_events_wix-events-v-2';
import * as orders from '@wix/auto_sdk_events_orders';
import * as policies from '@wix/auto_sdk_events_policies';
import * as ticketDefinitions from '@wix/auto_sdk_events_ticket-definitions-v-2';

const MODULES = { events, orders, policies, ticketDefinitions };
const WIX_ORIGIN = 'https://www.wixapis.com';

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

function describeError(error) {
  // SDK errors carry Wix's error body under response.data; plain errors only a message.
  const details = error?.response?.data ?? error?.details;
  return { message: String(error?.message || error), status: error?.response?.status, details };
}

// --- webhooks ---------------------------------------------------------------------------
function eventDefinitions() {
  const found = [];
  for (const [moduleName, module] of Object.entries(MODULES)) {
    for (const [exportName, value] of Object.entries(module)) {
      if (value && value.__type === 'event-definition') {
        found.push({ module: moduleName, handler: exportName, type: value.type });
      }
    }
  }
  return found;
}

async function webhooks(request) {
  const client = createClient({
    auth: AppStrategy({ appId: request.appId, publicKey: request.publicKey }),
    modules: MODULES,
  });
  const definitions = eventDefinitions();
  let ran = null; // the handlers that ran for the delivery being processed
  for (const { module, handler } of definitions) {
    client[module][handler]((envelope) => {
      ran.push({ module, handler, envelope });
    });
  }
  const results = [];
  for (const delivery of request.deliveries) {
    ran = [];
    try {
      const processed = await client.webhooks.process(delivery.jwt);
      results.push({
        key: delivery.key,
        eventType: processed.eventType,
        instanceId: processed.instanceId,
        identity: processed.identity,
        handlers: ran,
      });
    } catch (error) {
      results.push({ key: delivery.key, error: describeError(error), handlers: ran });
    }
  }
  return { definitions, results };
}

// --- REST -------------------------------------------------------------------------------
function sandboxFetch(baseUrl, log) {
  const realFetch = globalThis.fetch;
  return async (input, init = {}) => {
    const url = String(input instanceof Request ? input.url : input);
    if (!url.startsWith(`${WIX_ORIGIN}/`)) {
      // Nothing may leave this machine: only Wix's API host is expected, and it is rewritten.
      throw new Error(`referee: refused a request to ${url} (only ${WIX_ORIGIN} is rewritten)`);
    }
    const path = url.slice(WIX_ORIGIN.length);
    const method = init.method ?? (input instanceof Request ? input.method : 'GET');
    const response = await realFetch(baseUrl + path, init);
    log.push({
      method,
      path,
      body: typeof init.body === 'string' ? JSON.parse(init.body) : null,
      status: response.status,
    });
    return response;
  };
}

async function allPages(query, log, what) {
  const pages = [];
  let page = await query.find();
  pages.push(page.items);
  while (page.hasNext()) {
    if (pages.length > 1000) throw new Error(`${what}: more than 1000 pages`);
    page = await page.next();
    pages.push(page.items);
  }
  return pages;
}

async function rest(request) {
  const log = [];
  const fetch = sandboxFetch(request.baseUrl, log);
  // AppStrategy asks for its token with the global fetch, not the client's: route it too.
  globalThis.fetch = fetch;
  const client = createClient({
    auth: ApiKeyStrategy({ siteId: request.siteId, apiKey: request.apiKey }),
    modules: MODULES,
    fetch,
  });
  const size = request.pageSize;
  const fields = ['SALES_DETAILS'];
  const out = { events: {}, policies: {}, ticketDefinitions: {}, get: {} };
  out.events.pages = await allPages(client.events.queryEvents().limit(size), log, 'events');
  for (const page of out.events.pages) {
    for (const event of page) {
      const id = event._id;
      out.policies[id] = await allPages(
        client.policies.queryPolicies().eq('eventId', id).limit(size),
        log,
        `policies of ${id}`,
      );
      out.ticketDefinitions[id] = await allPages(
        client.ticketDefinitions.queryTicketDefinitions({ fields }).eq('eventId', id).limit(size),
        log,
        `ticket definitions of ${id}`,
      );
    }
  }
  out.get.events = {};
  out.get.policies = {};
  out.get.ticketDefinitions = {};
  for (const page of out.events.pages) {
    for (const event of page) out.get.events[event._id] = await client.events.getEvent(event._id);
  }
  for (const pages of Object.values(out.policies)) {
    for (const policy of pages.flat()) {
      out.get.policies[policy._id] = await client.policies.getPolicy(policy._id);
    }
  }
  for (const pages of Object.values(out.ticketDefinitions)) {
    for (const td of pages.flat()) {
      out.get.ticketDefinitions[td._id] = await client.ticketDefinitions.getTicketDefinition(td._id, {
        fields,
      });
    }
  }
  // A Wix app's own way in: client credentials for the installation, then the same Get.
  if (request.oauth) {
    const app = createClient({ auth: AppStrategy(request.oauth), modules: MODULES, fetch });
    const anyTd = Object.keys(out.get.ticketDefinitions)[0];
    out.oauthGet = await app.ticketDefinitions.getTicketDefinition(anyTd, { fields });
  }
  // A missing entity: the SDK must see Wix's 404, not an empty success.
  try {
    await client.policies.getPolicy(request.missingId);
    out.missing = { error: null };
  } catch (error) {
    out.missing = { error: describeError(error) };
  }
  out.requests = log;
  return out;
}

const request = await readStdin();
const modes = { webhooks, rest };
if (!modes[request.mode]) {
  process.stderr.write(`referee: unknown mode ${request.mode}\n`);
  process.exit(2);
}
try {
  process.stdout.write(JSON.stringify(await modes[request.mode](request)));
} catch (error) {
  process.stderr.write(`referee: ${error?.stack || error}\n${JSON.stringify(describeError(error))}\n`);
  process.exit(1);
}

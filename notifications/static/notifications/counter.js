/*
 * Live ticket counter widget: one <script> tag, no framework.
 *
 *   <script src="https://PORTAL/counter/widget.js"
 *           data-counter="https://PORTAL/counter/SLUG/" async></script>
 *
 * Optional: data-locale="de-DE" (default: the page's <html lang>), data-poll="5" (seconds
 * between polls when Server-Sent Events are not available).
 *
 * The text appears where the tag is, in a <span class="ticket-counter ticket-counter--STATE">.
 * It stays current over SSE (/counter/SLUG/events); if the stream cannot be used (an old
 * browser, a proxy that buffers, the portal has streaming off) it polls the JSON, which the
 * browser revalidates with its ETag (a 304 costs almost nothing).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.getAttribute("data-counter")) { return; }
  var url = script.getAttribute("data-counter");
  if (url.charAt(url.length - 1) !== "/") { url += "/"; }
  var pollSeconds = parseFloat(script.getAttribute("data-poll") || "5") || 5;
  var pageLocale = script.getAttribute("data-locale") || document.documentElement.lang || "";
  var span = document.createElement("span");
  span.className = "ticket-counter";
  span.setAttribute("aria-live", "polite");
  script.parentNode.insertBefore(span, script);

  function money(value, currency, locale) {
    try {
      return new Intl.NumberFormat(locale, { style: "currency", currency: currency }).format(Number(value));
    } catch (e) {
      return null;
    }
  }

  function fill(template, values) {
    return template.replace(/\{(unsold|price|name)\}/g, function (_, key) { return values[key]; });
  }

  // The server renders the text in the counter's locale; a page in another locale gets its
  // own number formats (the words are the counter's, as staff wrote them).
  function textOf(doc) {
    if (!pageLocale || !window.Intl || pageLocale.toLowerCase() === String(doc.locale).toLowerCase()) {
      return doc.text;
    }
    var price = doc.price === null ? "" : money(doc.price, doc.currency, pageLocale);
    if (price === null) { return doc.text; }
    if (doc.price_from && price) { price = fill(doc.template_from, { price: price }); }
    var unsold = doc.unsold === null ? "" : Number(doc.unsold).toLocaleString(pageLocale);
    return fill(doc.template, { unsold: unsold, price: price, name: doc.name || "" });
  }

  var shown = null;
  function render(doc) {
    var text = textOf(doc);
    if (text === shown) { return; }
    shown = text;
    span.textContent = text;
    span.className = "ticket-counter ticket-counter--" + doc.state;
    span.setAttribute("data-state", doc.state);
    span.setAttribute("data-unsold", doc.unsold === null ? "" : String(doc.unsold));
  }

  var polling = null;
  function poll() {
    // "no-cache": the browser asks again with If-None-Match; 304 keeps what is shown.
    return fetch(url, { cache: "no-cache", credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (doc) { if (doc) { render(doc); } })
      .catch(function () { /* keep the last value; try again on the next tick */ });
  }
  function startPolling() {
    if (polling === null) { polling = window.setInterval(poll, pollSeconds * 1000); }
    span.setAttribute("data-live", "polling");
  }

  poll();
  if (!window.EventSource) { startPolling(); return; }
  var failures = 0;
  var stream = new EventSource(url + "events");
  stream.addEventListener("counter", function (e) {
    failures = 0;
    try { render(JSON.parse(e.data)); } catch (err) { /* a torn message: the next one comes */ }
  });
  stream.onopen = function () { failures = 0; span.setAttribute("data-live", "stream"); };
  stream.onerror = function () {
    // A stream that ends on time reconnects by itself (retry:); one that keeps failing, or
    // that the browser gave up on (CORS, an error status), gives way to polling.
    failures += 1;
    if (stream.readyState === EventSource.CLOSED || failures >= 3) {
      stream.close();
      startPolling();
    }
  };
})();

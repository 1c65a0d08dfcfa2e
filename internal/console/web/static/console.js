// Strata fleet console: live updates, without a framework or a build step.
//
// The server streams store changes on /events (see live.go): "hello" with
// the store's revision on connect, "change" with the kinds that changed.
// When one of the kinds this page shows (data-kinds on <main>) changes,
// the page fetches its own URL with the header X-Strata-Fragment: main and
// swaps <main>'s content in place, keeping focus and scroll. One fetch at
// a time; changes that arrive meanwhile cause one more. After each swap
// it dispatches "strata:updated" on document and says when, politely.
(function () {
  'use strict';
  // A marker that a reload would lose: tests check it survives updates.
  window.strataLoadedAt = Date.now();

  var main = document.getElementById('main');
  if (!main) { return; }
  var kinds = (main.getAttribute('data-kinds') || '').split(' ').filter(Boolean);
  var indicator = document.getElementById('updated');
  var inFlight = false;
  var again = false;
  var deferred = false;

  function two(n) { return (n < 10 ? '0' : '') + n; }

  function clock(d) { return two(d.getHours()) + ':' + two(d.getMinutes()) + ':' + two(d.getSeconds()); }

  function editing() {
    var a = document.activeElement;
    return a && main.contains(a) && /^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName);
  }

  // focusKey remembers the focused element inside <main> by id, or by its
  // link target and position among links to the same place.
  function focusKey() {
    var a = document.activeElement;
    if (!a || a === main || !main.contains(a)) { return null; }
    if (a.id) { return { id: a.id }; }
    var href = a.getAttribute('href');
    if (href === null) { return null; }
    var same = Array.prototype.filter.call(main.querySelectorAll('a[href]'), function (e) { return e.getAttribute('href') === href; });
    return { href: href, index: same.indexOf(a) };
  }

  function restoreFocus(key) {
    if (!key) { return; }
    var el = null;
    if (key.id) {
      el = document.getElementById(key.id);
    } else {
      var same = Array.prototype.filter.call(main.querySelectorAll('a[href]'), function (e) { return e.getAttribute('href') === key.href; });
      el = same[Math.max(0, Math.min(key.index, same.length - 1))] || null;
    }
    if (el) { el.focus({ preventScroll: true }); }
  }

  function swap(html, rev, title) {
    var key = focusKey();
    var x = window.scrollX;
    var y = window.scrollY;
    main.innerHTML = html;
    if (rev) { main.setAttribute('data-rev', rev); }
    if (title) { document.title = decodeURIComponent(title) + ' · Strata fleet console'; }
    restoreFocus(key);
    window.scrollTo(x, y);
    if (indicator) { indicator.textContent = 'updated ' + clock(new Date()); }
    document.dispatchEvent(new CustomEvent('strata:updated', { detail: { rev: rev } }));
  }

  function refresh() {
    if (editing()) { deferred = true; return; }
    if (inFlight) { again = true; return; }
    inFlight = true;
    again = false;
    fetch(window.location.pathname + window.location.search, {
      headers: { 'X-Strata-Fragment': 'main' },
      credentials: 'same-origin',
      cache: 'no-store'
    }).then(function (res) {
      if (res.status === 401) { window.location.reload(); return null; }
      return res.text().then(function (html) {
        swap(html, res.headers.get('X-Strata-Rev'), res.headers.get('X-Strata-Title'));
      });
    }).catch(function () {
      // The next change, or the stream's reconnect, tries again.
    }).then(function () {
      inFlight = false;
      if (again) { refresh(); }
    });
  }

  // A change deferred while someone typed in a form field waits for them
  // to leave it.
  main.addEventListener('focusout', function () {
    window.setTimeout(function () {
      if (deferred && !editing()) { deferred = false; refresh(); }
    }, 0);
  });

  function connect() {
    var es = new EventSource('/events');
    es.addEventListener('hello', function (e) {
      var m = JSON.parse(e.data);
      // Changes made while the stream was down, or before it opened.
      if (String(m.rev) !== main.getAttribute('data-rev')) { refresh(); }
    });
    es.addEventListener('change', function (e) {
      var m = JSON.parse(e.data);
      if ((m.kinds || []).some(function (k) { return kinds.indexOf(k) >= 0; })) { refresh(); }
    });
    es.onerror = function () {
      // EventSource reconnects by itself unless the server refused it.
      if (es.readyState === EventSource.CLOSED) { window.setTimeout(connect, 5000); }
    };
  }

  // The map's legend filters: choosing a state shows only its machines
  // (the others fade); choosing it again shows all. The choice outlives
  // live updates, which replace the legend and the map.
  var only = '';
  function applyOnly() {
    var zones = document.getElementById('zones');
    if (!zones) { return; }
    zones.className = 'zones' + (only ? ' only-' + only : '');
    Array.prototype.forEach.call(main.querySelectorAll('button.legend-item'), function (b) {
      b.setAttribute('aria-pressed', String(b.getAttribute('data-state') === only));
    });
  }
  main.addEventListener('click', function (e) {
    var b = e.target.closest && e.target.closest('button.legend-item');
    if (!b) { return; }
    var state = b.getAttribute('data-state');
    only = only === state ? '' : state;
    applyOnly();
  });
  document.addEventListener('strata:updated', applyOnly);

  if (kinds.length > 0 && window.EventSource) {
    connect();
    // "last seen 3 s ago" ages without store changes: re-read pages that
    // show such times now and then.
    window.setInterval(function () {
      if (main.querySelector('time[data-ago]')) { refresh(); }
    }, 10000);
  }
}());

// The overlay page: follows /o/<token>/events and redraws the widgets from each snapshot.
// User text only ever goes through textContent: a title like <img onerror=...> stays text.
(function () {
  "use strict";

  var body = document.body;
  var limit = clampInt(body.dataset.n, 1, 20, 5);
  var scale = clampFloat(body.dataset.scale, 0.5, 3, 1);
  var accent = /^[0-9a-f]{6}$/i.test(body.dataset.accent || "") ? body.dataset.accent : "ff2d55";
  document.documentElement.style.setProperty("--accent", "#" + accent);
  document.documentElement.style.setProperty("--scale", String(scale));

  var eventsUrl = location.pathname.replace(/\/+$/, "") + "/events";
  var source = null;
  var revoked = false;
  var giftTimer = null;

  function clampInt(raw, low, high, fallback) {
    var value = parseInt(raw, 10);
    return isNaN(value) ? fallback : Math.min(Math.max(value, low), high);
  }

  function clampFloat(raw, low, high, fallback) {
    var value = parseFloat(raw);
    return isFinite(value) ? Math.min(Math.max(value, low), high) : fallback;
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function songText(song) {
    return song.artist + " – " + song.title;
  }

  function widget(id) {
    return document.getElementById(id);
  }

  function renderNow(now) {
    var box = widget("w-now");
    if (!box) return;
    box.hidden = !now;
    if (!now) return;
    var badge = box.querySelector(".badge");
    badge.textContent = now.badge;
    badge.className = "badge line-" + now.cls;
    box.querySelector(".song-text").textContent = songText(now);
    box.querySelector(".by").textContent = "sent by " + now.by;
  }

  function renderNext(rows) {
    var box = widget("w-next");
    if (!box) return;
    var list = box.querySelector(".rows");
    var items = [];
    rows.slice(0, limit).forEach(function (row) {
      var item = el("li", "row line-" + row.cls);
      item.appendChild(el("span", "pos", row.position + "."));
      item.appendChild(el("span", "song-text", songText(row)));
      item.appendChild(el("span", "by", row.by));
      item.appendChild(el("span", "badge line-" + row.cls, row.badge));
      if (row.points !== null && row.points !== undefined) item.appendChild(el("span", "points", row.points + " pts"));
      items.push(item);
    });
    list.replaceChildren.apply(list, items);
    box.querySelector(".empty").hidden = rows.length > 0;
  }

  function renderLines(lines) {
    var box = widget("w-lines");
    if (!box) return;
    var list = box.querySelector(".counters");
    var items = lines.map(function (line) {
      var item = el("li", "counter line-" + line.cls);
      item.appendChild(el("span", "badge", line.badge));
      item.appendChild(el("span", "count", line.count));
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  function renderTop(supporters) {
    var box = widget("w-top");
    if (!box) return;
    box.hidden = supporters.length === 0;
    var list = box.querySelector(".rows");
    var items = supporters.slice(0, limit).map(function (s) {
      var item = el("li", "row");
      item.appendChild(el("span", "name", s.name));
      item.appendChild(el("span", "points", s.points + " pts"));
      return item;
    });
    list.replaceChildren.apply(list, items);
  }

  function renderGoal(goal) {
    var box = widget("w-goal");
    if (!box) return;
    box.hidden = !goal;
    if (!goal) return;
    box.querySelector(".goal-main").textContent = "🎁 Send " + goal.coins + " coins to jump to " + goal.line;
    box.querySelector(".goal-more").textContent = goal.tiers.slice(1).map(function (t) {
      return t.coins + " → " + t.line;
    }).join(" · ");
  }

  function render(state) {
    renderNow(state.now);
    renderNext(state.next);
    renderLines(state.lines);
    renderTop(state.supporters);
    renderGoal(state.goal);
    body.dataset.updated = String(Date.now());
  }

  function showGift(gift) {
    var box = widget("w-gift");
    if (!box) return;
    box.replaceChildren(
      el("div", "gift-title", "🎁 Gift boost!"),
      el("div", "gift-song", songText(gift)),
      el("div", "gift-line", "moved up to " + gift.line + " · sent by " + gift.by)
    );
    box.classList.remove("show");
    void box.offsetWidth; // restart the animation for back-to-back gifts
    box.classList.add("show");
    if (giftTimer) clearTimeout(giftTimer);
    giftTimer = setTimeout(function () { box.classList.remove("show"); }, 7000);
  }

  function showRevoked() {
    revoked = true;
    body.dataset.state = "revoked";
    if (source) source.close();
    widget("overlay").hidden = true;
    widget("revoked").hidden = false;
  }

  function connect() {
    source = new EventSource(eventsUrl);
    source.addEventListener("open", function () { body.dataset.state = "live"; });
    source.addEventListener("snapshot", function (event) {
      body.dataset.state = "live";
      render(JSON.parse(event.data));
    });
    source.addEventListener("gift", function (event) { showGift(JSON.parse(event.data)); });
    source.addEventListener("revoked", showRevoked);
    source.addEventListener("error", function () {
      if (revoked) return;
      body.dataset.state = "reconnecting";
      // A network error makes EventSource retry by itself; an HTTP error (a proxy's 502 while the bot
      // restarts, or a 404 for a revoked link) closes it for good, so probe and reconnect ourselves.
      if (source.readyState === EventSource.CLOSED) setTimeout(probe, 2000);
    });
  }

  function probe() {
    fetch(eventsUrl, { method: "HEAD", cache: "no-store" }).then(function (response) {
      if (response.status === 404) showRevoked();
      else if (response.ok) connect();
      else setTimeout(probe, 3000);
    }, function () { setTimeout(probe, 3000); });
  }

  connect();
})();

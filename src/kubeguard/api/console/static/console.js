// kubeguard console: the graph (draw, expand on click, keyboard), the live suppression preview and the
// "/" shortcut to search. Written for this project; no library. Everything else is rendered on the server.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var KIND_NAMES = {
    cluster: "Cluster", subject: "Kubernetes subject", ip: "IP address", pod: "Pod", workload: "Workload",
    image: "Container image", namespace: "Namespace", useragent: "User agent", asn: "Autonomous system",
    finding: "Finding", findings: "Findings"
  };
  var SLASHED = { pod: true, image: true, namespace: true, workload: true };

  function el(name, attrs, parent) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (parent) parent.appendChild(node);
    return node;
  }

  function keyPath(kind, key) {
    var encoded = encodeURIComponent(key);
    return SLASHED[kind] ? encoded.replace(/%2F/g, "/") : encoded;
  }

  function pageOf(node) {
    if (node.kind === "finding") return "/console/findings/" + encodeURIComponent(node.key);
    if (node.kind === "findings") return "/console/findings?type=" + encodeURIComponent(node.key);
    return "/console/entities/" + node.kind + "/" + keyPath(node.kind, node.key);
  }

  function severityName(value) {
    if (value >= 9) return "Critical";
    if (value >= 7) return "High";
    if (value >= 4) return "Medium";
    return "Low";
  }

  // Shapes per kind, centred on (0, 0), radius about r.
  function shape(kind, r, parent) {
    var pts;
    function poly(points) { return el("polygon", { points: points.map(function (p) { return p[0].toFixed(1) + "," + p[1].toFixed(1); }).join(" "), "class": "shape" }, parent); }
    function regular(n, radius, rotate) {
      var out = [];
      for (var i = 0; i < n; i++) {
        var a = rotate + (i * 2 * Math.PI) / n;
        out.push([radius * Math.cos(a), radius * Math.sin(a)]);
      }
      return out;
    }
    switch (kind) {
      case "cluster": return poly(regular(6, r + 2, 0));
      case "ip": return poly([[0, -r - 2], [r + 2, 0], [0, r + 2], [-r - 2, 0]]);
      case "pod": return el("rect", { x: -r, y: -r, width: 2 * r, height: 2 * r, "class": "shape" }, parent);
      case "workload": return el("rect", { x: -r - 3, y: -r + 2, width: 2 * r + 6, height: 2 * r - 4, rx: 5, "class": "shape" }, parent);
      case "image": return poly([[0, -r - 2], [r + 2, r], [-r - 2, r]]);
      case "namespace": return poly(regular(5, r + 1, -Math.PI / 2));
      case "useragent": return el("ellipse", { rx: r + 4, ry: r - 3, "class": "shape" }, parent);
      case "asn": return poly(regular(8, r + 1, Math.PI / 8));
      case "finding":
      case "findings":
        pts = [];
        for (var i = 0; i < 10; i++) {
          var rad = i % 2 ? r * 0.5 : r + 3, a = -Math.PI / 2 + (i * Math.PI) / 5;
          pts.push([rad * Math.cos(a), rad * Math.sin(a)]);
        }
        return poly(pts);
      default: return el("circle", { r: r, "class": "shape" }, parent);
    }
  }

  function Graph(box) {
    this.box = box;
    this.nodes = {};
    this.edges = {};
    this.expanded = {};
    this.highlight = box.getAttribute("data-highlight") || "";
    this.width = 1000;
    this.height = 640;
  }

  Graph.prototype.load = function (url, around) {
    var self = this;
    self.status("Loading…");
    return fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("the graph could not be loaded (HTTP " + response.status + ")");
        return response.json();
      })
      .then(function (graph) {
        self.merge(graph, around);
        self.expanded[graph.root] = true;
        if (!self.rootId) self.rootId = graph.root;
        self.layout();
        self.draw();
        self.status(Object.keys(self.nodes).length + " nodes");
      })
      .catch(function (error) { self.status(error.message); });
  };

  Graph.prototype.status = function (text) {
    var node = this.box.querySelector(".status");
    if (!node) { node = document.createElement("p"); node.className = "status"; node.setAttribute("role", "status"); this.box.appendChild(node); }
    node.textContent = text;
  };

  Graph.prototype.merge = function (graph, around) {
    var self = this, origin = around ? self.nodes[around] : null, added = 0;
    graph.nodes.forEach(function (node, index) {
      if (self.nodes[node.id]) return;
      var angle = (2 * Math.PI * index) / Math.max(graph.nodes.length, 1);
      var radius = origin ? 90 : 60 + 110 * (node.depth || 0);
      var cx = origin ? origin.x : self.width / 2, cy = origin ? origin.y : self.height / 2;
      node.x = cx + radius * Math.cos(angle) * (node.depth === 0 && !origin ? 0 : 1);
      node.y = cy + radius * Math.sin(angle) * (node.depth === 0 && !origin ? 0 : 1);
      self.nodes[node.id] = node;
      added++;
    });
    graph.edges.forEach(function (edge) {
      var id = edge.source + "\u0000" + edge.target + "\u0000" + edge.relation;
      if (!self.edges[id] && self.nodes[edge.source] && self.nodes[edge.target]) self.edges[id] = edge;
    });
    return added;
  };

  // A few hundred rounds of a plain force model: nodes repel, edges pull, the root stays in the middle.
  Graph.prototype.layout = function () {
    var ids = Object.keys(this.nodes), nodes = this.nodes, edges = this.edges, w = this.width, h = this.height;
    var root = nodes[this.rootId];
    for (var round = 0; round < 220; round++) {
      var heat = 1 - round / 220;
      var force = {};
      ids.forEach(function (id) { force[id] = [0, 0]; });
      for (var i = 0; i < ids.length; i++) {
        for (var j = i + 1; j < ids.length; j++) {
          var a = nodes[ids[i]], b = nodes[ids[j]];
          var dx = a.x - b.x, dy = a.y - b.y, d2 = dx * dx + dy * dy + 0.01;
          if (d2 > 160000) continue;
          var push = 3200 / d2;
          force[ids[i]][0] += dx * push; force[ids[i]][1] += dy * push;
          force[ids[j]][0] -= dx * push; force[ids[j]][1] -= dy * push;
        }
      }
      Object.keys(edges).forEach(function (id) {
        var e = edges[id], a = nodes[e.source], b = nodes[e.target];
        var dx = b.x - a.x, dy = b.y - a.y, d = Math.sqrt(dx * dx + dy * dy) + 0.01, pull = (d - 95) * 0.02;
        force[e.source][0] += (dx / d) * pull * d * 0.05; force[e.source][1] += (dy / d) * pull * d * 0.05;
        force[e.target][0] -= (dx / d) * pull * d * 0.05; force[e.target][1] -= (dy / d) * pull * d * 0.05;
      });
      ids.forEach(function (id) {
        var n = nodes[id];
        if (n === root) { n.x = w / 2; n.y = h / 2; return; }
        var fx = force[id][0] + (w / 2 - n.x) * 0.004, fy = force[id][1] + (h / 2 - n.y) * 0.006;
        var step = Math.sqrt(fx * fx + fy * fy), limit = 12 * heat + 0.5;
        if (step > limit) { fx *= limit / step; fy *= limit / step; }
        n.x = Math.min(w - 30, Math.max(30, n.x + fx));
        n.y = Math.min(h - 24, Math.max(18, n.y + fy));
      });
    }
  };

  Graph.prototype.onPath = function (edge) {
    if (!this.highlight) return false;
    var ends = [this.nodes[edge.source], this.nodes[edge.target]];
    var kinds = ends.map(function (n) { return n.kind; }).sort().join(",");
    var fromRoot = edge.source === this.highlight || edge.target === this.highlight;
    if (fromRoot) return kinds.indexOf("subject") >= 0 || kinds.indexOf("ip") >= 0;
    return kinds === "ip,subject" && ends.every(function (n) { return n.depth <= 1; });
  };

  Graph.prototype.draw = function () {
    var self = this;
    var old = self.box.querySelector("svg");
    if (old) old.remove();
    var placeholder = self.box.querySelector(".empty");
    if (placeholder) placeholder.remove();
    var svg = el("svg", { viewBox: "0 0 " + self.width + " " + self.height, role: "img", "aria-label": "Neighbourhood graph" });
    self.box.insertBefore(svg, self.box.firstChild);
    var pathNodes = {};
    Object.keys(self.edges).forEach(function (id) {
      var e = self.edges[id], a = self.nodes[e.source], b = self.nodes[e.target];
      var onPath = self.onPath(e);
      if (onPath) { pathNodes[e.source] = true; pathNodes[e.target] = true; }
      var line = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, "class": "edge" + (onPath ? " path" : "") }, svg);
      el("title", {}, line).textContent = a.label + " — " + e.relation + " → " + b.label + (e.count ? " (" + e.count + ")" : "");
    });
    Object.keys(self.nodes).forEach(function (id) {
      var n = self.nodes[id];
      var css = "node k-" + n.kind + (id === self.rootId ? " root" : "") + (pathNodes[id] ? " path" : "");
      if (n.severity !== undefined) css += " sev-" + severityName(n.severity);
      var g = el("g", { "class": css, transform: "translate(" + n.x.toFixed(1) + "," + n.y.toFixed(1) + ")", tabindex: "0", role: "button",
        "aria-label": (KIND_NAMES[n.kind] || n.kind) + " " + n.key + (self.expanded[id] ? "" : ", press Enter to expand") }, svg);
      g.setAttribute("data-id", id);
      shape(n.kind, n.kind === "finding" || n.kind === "findings" ? 10 : 9, g);
      el("title", {}, g).textContent = (KIND_NAMES[n.kind] || n.kind) + ": " + (n.type ? n.type + " " : "") + n.key + "\nclick: expand · double-click or O: open";
      var text = el("text", { y: 22, "text-anchor": "middle" }, g);
      text.textContent = n.label;
      g.addEventListener("click", function () { self.expand(id); });
      g.addEventListener("dblclick", function () { window.location.href = pageOf(n); });
      g.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); self.expand(id); }
        if (event.key === "o" || event.key === "O") { window.location.href = pageOf(n); }
      });
    });
    self.legend();
  };

  Graph.prototype.legend = function () {
    if (this.box.querySelector(".legend")) return;
    var list = document.createElement("ul");
    list.className = "legend";
    ["cluster", "subject", "ip", "pod", "workload", "image", "namespace", "useragent", "asn", "finding"].forEach(function (kind) {
      var item = document.createElement("li");
      var icon = el("svg", { width: 18, height: 18, viewBox: "-10 -10 20 20", "class": "k-" + kind });
      shape(kind, 6, icon);
      item.appendChild(icon);
      item.appendChild(document.createTextNode(" " + KIND_NAMES[kind]));
      list.appendChild(item);
    });
    this.box.appendChild(list);
  };

  Graph.prototype.expand = function (id) {
    var n = this.nodes[id];
    if (!n || this.expanded[id]) { if (n) this.status(n.label + " is already expanded; double-click or press O to open it"); return; }
    if (n.kind === "findings") { window.location.href = pageOf(n); return; }
    this.expanded[id] = true;
    var url = n.kind === "finding" ? "/api/graph/finding/" + encodeURIComponent(n.key) + "?depth=1"
      : "/api/graph/" + n.kind + "/" + keyPath(n.kind, n.key) + "?depth=1";
    this.load(url, id);
  };

  function initGraphs() {
    Array.prototype.forEach.call(document.querySelectorAll(".graph[data-src]"), function (box) {
      new Graph(box).load(box.getAttribute("data-src"), null);
    });
  }

  function initSuppressPreview() {
    var form = document.querySelector("form.suppress");
    var counter = document.getElementById("preview-count");
    if (!form || !counter) return;
    function update() {
      var criterion = {};
      Array.prototype.forEach.call(form.querySelectorAll("input[name=field]"), function (box) {
        if (box.checked) criterion[box.value] = { eq: JSON.parse(box.getAttribute("data-values")) };
      });
      if (!Object.keys(criterion).length) { counter.textContent = "0"; return; }
      criterion["service.archived"] = { eq: ["false"] };
      fetch("/api/findings/count?criterion=" + encodeURIComponent(JSON.stringify(criterion)), { credentials: "same-origin" })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (body) { if (body) counter.textContent = String(body.count); });
    }
    form.addEventListener("change", update);
  }

  document.addEventListener("keydown", function (event) {
    var target = event.target;
    if (event.key === "/" && !/^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName)) {
      var search = document.getElementById("q");
      if (search) { event.preventDefault(); search.focus(); }
    }
  });

  initGraphs();
  initSuppressPreview();
})();

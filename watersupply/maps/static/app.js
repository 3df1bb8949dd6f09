/* watersupply service map: draws the map's layers, legends, controls and time slider from the
 * page's JSON data block (loaded by watersupply.maps.assets, run once by the page as
 * wsServiceMap(map, "ws-data")). User text is only ever put on the page with textContent. */
/* exported wsServiceMap */
function wsServiceMap(map, dataId) {
  "use strict";
  var t0 = (window.performance && performance.now) ? performance.now() : 0;
  var D = JSON.parse(document.getElementById(dataId).textContent);
  var T = D.text;
  var state = {hour: -1, timer: null, mode: null};
  var api = {map: map, layers: {}, counts: {}, markers: {nodes: [], pipes: [], settlements: [], facilities: []}};
  window.__wsmap = api;
  // set the final view first: vector layers are then projected and drawn once
  map.fitBounds(D.bounds, {paddingTopLeft: [12, 12], paddingBottomRight: [Math.min(300, map.getSize().x / 4), 12],
                           animate: false});

  function el(tag, cls, txt) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (txt !== undefined && txt !== null) { e.textContent = String(txt); }
    return e;
  }
  function esc(s) { var d = document.createElement("div"); d.textContent = String(s); return d.innerHTML; }
  function fmt(v, digits, unit) {
    if (v === null || v === undefined || v === "") { return "\u2013"; }
    var s;
    if (typeof v === "number") {
      s = (digits === 0) ? Math.round(v).toLocaleString("en-US") :
          (digits === null || digits === undefined) ? String(v) : v.toFixed(digits);
      return unit ? s + " " + unit : s;
    }
    return String(v);
  }
  function colourAt(lg, v) {
    if (v === null || v === undefined || isNaN(v)) { return lg.items[lg.items.length - 1][0]; }
    var i = 0;
    while (i < lg.breaks.length && v >= lg.breaks[i]) { i++; }
    return lg.items[i][0];
  }
  function hourText(h) {
    var hh = D.pressure.hours[h];
    if (Array.isArray(T.hour)) { return T.hour[0].replace("{h}", hh) + " " + T.hour[1].replace("{h}", hh); }
    return T.hour.replace("{h}", hh);
  }
  function popup(layerData, i, title, extraRows) {
    var box = el("div", "ws-popup");
    box.appendChild(el("div", "ws-popup-title", title));
    var tbl = el("table");
    function row(label, value) {
      var tr = el("tr"); tr.appendChild(el("th", null, label)); tr.appendChild(el("td", null, value)); tbl.appendChild(tr);
    }
    layerData.popup.forEach(function (p) {
      var v = layerData.cols[p[1]][i];
      if (v === null || v === undefined) { return; }
      row(p[0], fmt(v, p[2], p[3]));
    });
    (extraRows || []).forEach(function (r) { row(r[0], r[1]); });
    box.appendChild(tbl);
    return box;
  }
  function openPopup(content, latlng) {
    L.popup({maxWidth: 420, maxHeight: 440, autoPanPaddingTopLeft: L.point(40, 130)})
      .setLatLng(latlng).setContent(content).openOn(map);
  }
  function overlay(key, layer) { api.layers[key] = layer; layer.addTo(map); return layer; }

  // ---- district outline
  if (D.district) {
    var dg = L.featureGroup();
    D.district.geom.forEach(function (g) {
      L.polygon(g, {color: "#636363", weight: 2, dashArray: "6 4", fill: false, interactive: false, className: "ws-district"}).addTo(dg);
    });
    overlay("district", dg);
  }
  // ---- settlements
  if (D.settlements) {
    var S = D.settlements, lgS = D.legends.settlements, sg = L.featureGroup();
    S.geom.forEach(function (g, i) {
      var poly = L.polygon(g, {color: "#444", weight: 1.2, fillColor: lgS.items[S.cls[i]][0], fillOpacity: 0.35, className: "ws-settlement"});
      poly._wsi = i;
      poly.bindTooltip(el("span", null, S.label[i]), {permanent: true, direction: "center", className: "ws-label"});
      // a name left out for lack of room (see declutter) shows while the pointer is on its settlement
      poly.on("mouseover", function () { var e = this.getTooltip().getElement(); if (e) { e.classList.add("ws-label-hover"); } });
      poly.on("mouseout", function () { var e = this.getTooltip().getElement(); if (e) { e.classList.remove("ws-label-hover"); } });
      poly.addTo(sg);
      api.markers.settlements.push(poly);
    });
    sg.on("click", function (e) { openPopup(popup(S, e.layer._wsi, S.label[e.layer._wsi]), e.latlng); });
    overlay("settlements", sg);
    api.counts.settlements = S.geom.length;
  }
  // ---- pressure zones (watersupply zones): dashed outlines, designed zones (behind a PRV or break tank) in purple
  if (D.zones) {
    var Zn = D.zones, zg = L.featureGroup();
    Zn.geom.forEach(function (g, i) {
      var zp = L.polygon(g, {color: Zn.designed[i] ? "#6a3d9a" : "#807dba", weight: Zn.designed[i] ? 2.2 : 1.2,
                             dashArray: "5 4", fillColor: "#6a3d9a", fillOpacity: Zn.designed[i] ? 0.08 : 0.0,
                             className: "ws-zone"});
      zp._wsi = i;
      zp.bindTooltip(el("span", null, Zn.label[i]), {sticky: true, className: "ws-label"});
      zp.addTo(zg);
    });
    zg.on("click", function (e) { openPopup(popup(Zn, e.layer._wsi, Zn.label[e.layer._wsi]), e.latlng); });
    overlay("zones", zg);
    zg.bringToBack();  // below the settlements: their popups stay clickable
    api.counts.zones = Zn.geom.length;
  }
  // ---- pipes: mains and branches
  var P = D.pipes;
  function pipeColour(i) { var m = P.modes[state.mode]; return m.legend.items[m.idx[i]][0]; }
  if (P) {
    state.mode = P.mode;
    var groups = {main: L.featureGroup(), branch: L.featureGroup()};
    P.geom.forEach(function (g, i) {
      if (!g.length) { return; }
      var line = L.polyline(g, {color: pipeColour(i), weight: P.weight[i], opacity: 0.9, className: "ws-pipe ws-" + P.pclass[i]});
      line._wsi = i;
      line.addTo(groups[P.pclass[i]]);
      api.markers.pipes.push(line);
    });
    ["main", "branch"].forEach(function (k) {
      groups[k].on("click", function (e) {
        var i = e.layer._wsi; openPopup(popup(P, i, (k === "main" ? T.mains : T.branches) + " " + P.cols.id[i]), e.latlng);
      });
    });
    overlay("branches", groups.branch);
    overlay("mains", groups.main);
    api.counts.mains = groups.main.getLayers().length;
    api.counts.branches = groups.branch.getLayers().length;
  }
  // ---- what changed (scenario)
  if (D.changes) {
    var cg = L.featureGroup(), cc = D.change_colour;
    if (P) {
      P.changed.forEach(function (i) {
        var l = L.polyline(P.geom[i], {color: cc, weight: P.weight[i] + 4, opacity: 0.85, dashArray: "8 5", className: "ws-change ws-change-pipe"});
        l._wsi = i; l.addTo(cg);
        l.on("click", function (e) { openPopup(popup(P, i, T.changed_pipe + " " + P.cols.id[i]), e.latlng); });
      });
    }
    if (D.settlements) {
      D.settlements.changed.forEach(function (i) {
        var s = L.polygon(D.settlements.geom[i], {color: cc, weight: 4, opacity: 0.9, fill: false, className: "ws-change ws-change-settlement"});
        s.on("click", function (e) { openPopup(popup(D.settlements, i, D.settlements.label[i]), e.latlng); });
        s.addTo(cg);
      });
    }
    overlay("changes", cg);
    api.counts.changes = cg.getLayers().length;
  }
  // ---- demand nodes
  var N = D.nodes;
  if (N) {
    var lgN = D.legends.nodes, ng = L.featureGroup();
    N.latlng.forEach(function (ll, i) {
      if (!ll) { return; }
      var c = L.circleMarker(ll, {radius: 4, weight: 0.6, color: "#333", fillColor: lgN.items[N.cls[i]][0], fillOpacity: 0.95, className: "ws-node"});
      c._wsi = i; c.addTo(ng);
      api.markers.nodes[i] = c;
    });
    ng.on("click", function (e) {
      var i = e.layer._wsi, extra = [];
      if (D.pressure && state.hour >= 0) {
        var v = D.pressure.values[state.hour * D.pressure.n + i];
        extra.push([T.pressure_now + " (" + hourText(state.hour) + ")", v === null ? "\u2013" : (v / D.pressure.scale).toFixed(1) + " m"]);
      }
      openPopup(popup(N, i, T.nodes + " " + N.cols.id[i], extra), e.latlng);
    });
    overlay("nodes", ng);
    api.counts.nodes = ng.getLayers().length;
  }
  // ---- facilities
  var F = D.facilities;
  if (F) {
    var fg = L.featureGroup();
    F.latlng.forEach(function (ll, i) {
      if (!ll) { return; }
      var icon = L.divIcon({html: D.icons[F.fkind[i]], className: "ws-icon ws-icon-" + F.fkind[i], iconSize: [24, 24], iconAnchor: [12, 12]});
      var mk = L.marker(ll, {icon: icon, keyboard: true, riseOnHover: true});
      mk._wsi = i;
      mk.bindTooltip(el("span", null, F.cols.name[i]), {direction: "top", offset: [0, -10]});
      mk.addTo(fg);
      api.markers.facilities.push(mk);
    });
    fg.on("click", function (e) { var i = e.layer._wsi; openPopup(popup(F, i, F.cols.name[i]), e.layer.getLatLng()); });
    overlay("facilities", fg);
    api.counts.facilities = fg.getLayers().length;
  }

  // ---- basemaps and layer control
  var bases = null;
  if (D.tiles.length) {
    bases = {};
    bases[esc(T.basemap_none)] = L.layerGroup();
    D.tiles.forEach(function (b, k) {
      var g = L.layerGroup();
      b.layers.forEach(function (t) { L.tileLayer(t.url, t.options).addTo(g); });
      bases[esc(b.name)] = g;
      if (k === 0) { g.addTo(map); }
    });
  }
  var names = {district: T.district, settlements: T.settlements, mains: T.mains, branches: T.branches,
               changes: T.changes + (D.changes && D.changes.label ? ": " + D.changes.label : ""),
               nodes: T.nodes, facilities: T.facilities, zones: T.zones};
  var overlays = {};
  ["settlements", "zones", "mains", "branches", "changes", "nodes", "facilities", "district"].forEach(function (k) {
    if (api.layers[k]) { overlays[esc(names[k])] = api.layers[k]; }
  });
  api.layerControl = L.control.layers(bases, overlays, {collapsed: false, position: "topright"}).addTo(map);

  // ---- title
  if (D.title) {
    var tc = L.control({position: "topleft"});
    tc.onAdd = function () { return el("div", "ws-box ws-title", D.title); };
    tc.addTo(map);
  }

  // ---- legends (one box; a section per visible coloured layer)
  var legendBox = el("div", "ws-box ws-legend");
  function swatch(shape, colour) {
    var s = el("span", "ws-sw " + shape);
    if (shape === "icon") { s.innerHTML = D.icons[colour]; } else { s.style.background = colour; }
    return s;
  }
  function section(key, lg, layerKeys) {
    var visible = layerKeys.some(function (k) { return api.layers[k] && map.hasLayer(api.layers[k]); });
    if (!visible) { return; }
    var sec = el("div", "ws-legend-" + key);
    sec.appendChild(el("h4", null, lg.title));
    lg.items.forEach(function (it) {
      var row = el("div", "ws-item"); row.appendChild(swatch(lg.shape, it[0])); row.appendChild(el("span", null, it[1]));
      sec.appendChild(row);
    });
    legendBox.appendChild(sec);
  }
  var ZONES_LISTED = 8;  // more designed zones than this: the legend counts them instead of naming them
  function drawLegend() {
    legendBox.textContent = "";
    legendBox.appendChild(el("div", "ws-popup-title", T.legend));
    if (D.legends.settlements) { section("settlements", D.legends.settlements, ["settlements"]); }
    if (P) {
      var lg = P.modes[state.mode].legend;
      section("pipes", {title: lg.title, items: lg.items, shape: "line"}, ["mains", "branches"]);
    }
    if (D.zones) {
      var zd = D.zones.label.filter(function (z, i) { return D.zones.designed[i]; });
      section("zones", {title: T.zones, items: [["#6a3d9a", zd.length > ZONES_LISTED ? T.zones_many : (zd.length ? zd.join(", ") : "\u2013")]], shape: "line"}, ["zones"]);
    }
    if (D.legends.changes) { section("changes", D.legends.changes, ["changes"]); }
    if (D.legends.nodes) {
      var t = D.legends.nodes.title + (D.pressure ? " \u2014 " + (state.hour < 0 ? T.min_over_run : hourText(state.hour)) : "");
      section("nodes", {title: t, items: D.legends.nodes.items, shape: "circle"}, ["nodes"]);
    }
    if (D.legends.facilities) { section("facilities", D.legends.facilities, ["facilities"]); }
  }
  var lc = L.control({position: "bottomright"});
  lc.onAdd = function () { L.DomEvent.disableScrollPropagation(legendBox); return legendBox; };
  lc.addTo(map);
  map.on("overlayadd overlayremove", drawLegend);
  // a layer switched back on is drawn on top: restore the stacking (areas below lines below points)
  function restack() {
    ["settlements", "zones", "district"].forEach(function (k) { if (api.layers[k] && map.hasLayer(api.layers[k])) { api.layers[k].bringToBack(); } });
    ["mains", "changes", "nodes"].forEach(function (k) { if (api.layers[k] && map.hasLayer(api.layers[k])) { api.layers[k].bringToFront(); } });
  }
  map.on("overlayadd", restack);

  // ---- pipe colouring switch
  api.setPipeColour = function (mode) {
    if (!P || !P.modes[mode]) { return false; }
    state.mode = mode;
    api.markers.pipes.forEach(function (l) { l.setStyle({color: pipeColour(l._wsi)}); });
    drawLegend();
    return true;
  };
  if (P && Object.keys(P.modes).length > 1) {
    var mc = L.control({position: "topright"});
    mc.onAdd = function () {
      var box = el("div", "ws-box ws-mode");
      box.appendChild(el("label", null, T.pipe_colour + " "));
      var sel = el("select"); sel.id = "ws-pipe-colour";
      Object.keys(P.modes).forEach(function (k) {
        var o = el("option", null, T.modes[k]); o.value = k; if (k === state.mode) { o.selected = true; } sel.appendChild(o);
      });
      sel.addEventListener("change", function () { api.setPipeColour(sel.value); });
      box.appendChild(sel);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    mc.addTo(map);
  }

  // ---- time slider: node pressure hour by hour
  api.setHour = function (h) {
    if (!N) { return; }
    state.hour = h;
    var lgN = D.legends.nodes, Pz = D.pressure;
    api.markers.nodes.forEach(function (c, i) {
      var v = (h < 0 || !Pz) ? N.cols.minp[i] : Pz.values[h * Pz.n + i];
      if (h >= 0 && Pz && v !== null) { v = v / Pz.scale; }
      c.setStyle({fillColor: colourAt(lgN, v)});
    });
    if (api.timeLabel) { api.timeLabel.textContent = h < 0 ? T.min_over_run : hourText(h); }
    drawLegend();
  };
  if (D.pressure && N) {
    var H = D.pressure.hours.length;
    var tcl = L.control({position: "bottomleft"});
    tcl.onAdd = function () {
      var box = el("div", "ws-box ws-time");
      box.appendChild(el("div", "ws-popup-title", T.time + " \u2014 " + T.nodes));
      var slider = el("input"); slider.type = "range"; slider.min = "0"; slider.max = String(H - 1); slider.step = "1";
      slider.value = "0"; slider.id = "ws-time-slider";
      var label = el("div", "ws-time-label", T.min_over_run); label.id = "ws-time-label";
      api.timeLabel = label;
      var play = el("button", null, "\u25b6 " + T.play); play.type = "button"; play.id = "ws-time-play";
      var minb = el("button", null, T.min_btn); minb.type = "button"; minb.id = "ws-time-min";
      slider.addEventListener("input", function () { api.setHour(parseInt(slider.value, 10)); });
      minb.addEventListener("click", function () { if (state.timer) { clearInterval(state.timer); state.timer = null; } api.setHour(-1); });
      play.addEventListener("click", function () {
        if (state.timer) { clearInterval(state.timer); state.timer = null; return; }
        state.timer = setInterval(function () {
          var h = (state.hour + 1) % H; slider.value = String(h); api.setHour(h);
        }, 400);
      });
      box.appendChild(slider); box.appendChild(label); box.appendChild(play); box.appendChild(minb);
      L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
      return box;
    };
    tcl.addTo(map);
  }

  L.control.scale({imperial: false, maxWidth: 160}).addTo(map);

  // ---- notes
  var labelNote = el("li", "ws-note-labels", T.note_labels);
  labelNote.style.display = "none";
  var nc = L.control({position: "bottomleft"});
  nc.onAdd = function () {
    var box = el("details", "ws-box ws-notes");
    box.open = D.tiles.length > 0;  // the GCJ-02 warning matters once a basemap is shown
    box.appendChild(el("summary", null, T.notes));
    var ul = el("ul");
    D.notes.forEach(function (n) { ul.appendChild(el("li", null, n)); });
    ul.appendChild(labelNote);
    box.appendChild(ul);
    L.DomEvent.disableClickPropagation(box); L.DomEvent.disableScrollPropagation(box);
    return box;
  };
  nc.addTo(map);

  // ---- settlement names never pile up: placed in D.settlements.order (largest settlement first), each on its
  // settlement's centre or, failing that, one line above or below it; a name that still overlaps one already
  // placed is hidden at this zoom (it shows on hover, or once zoomed in far enough)
  function declutter() {
    if (!D.settlements || !api.layers.settlements || !map.hasLayer(api.layers.settlements)) { return; }
    var placed = [], hidden = 0, items = [];
    D.settlements.order.forEach(function (i) {
      var tt = api.markers.settlements[i].getTooltip(), node = tt && tt.getElement();
      if (!node) { return; }
      if (tt._wsShift) { tt.options.offset = L.point(0, 0); tt._wsShift = 0; tt.update(); }
      items.push({tt: tt, node: node});
    });
    // read every box first, then write: one layout however many names (hiding does not change the layout)
    items.forEach(function (it) { it.r = it.node.getBoundingClientRect(); });
    function free(r, dy) {
      var box = {l: r.left - 2, t: r.top + dy - 1, r: r.right + 2, b: r.bottom + dy + 1};
      return placed.some(function (o) { return box.l < o.r && o.l < box.r && box.t < o.b && o.t < box.b; }) ? null : box;
    }
    items.forEach(function (it) {
      var h = it.r.height + 2, shifts = [0, -h, h], box = null, dy = 0;
      for (var k = 0; k < shifts.length && !box; k++) { dy = shifts[k]; box = free(it.r, dy); }
      if (box) {
        placed.push(box);
        if (dy) { it.tt.options.offset = L.point(0, dy); it.tt._wsShift = dy; it.tt.update(); }
      } else {
        hidden++;
      }
      it.node.classList.toggle("ws-label-hidden", !box);
    });
    api.labelsHidden = hidden;
    if (hidden) { labelNote.style.display = ""; }
  }
  api.declutter = declutter;
  map.on("zoomend", declutter);
  map.on("overlayadd", function (e) { if (e.layer === api.layers.settlements) { declutter(); } });

  drawLegend();
  declutter();
  // labels are centred by their width: centre them again once the embedded font is in (some browsers load it late)
  if (document.fonts && document.fonts.ready) {
    document.fonts.ready.then(function () {
      api.markers.settlements.forEach(function (p) { if (p.getTooltip()) { p.getTooltip().update(); } });
      declutter();
      api.fontsReady = true;
    });
  }
  api.buildMs = ((window.performance && performance.now) ? performance.now() : 0) - t0;
  api.ready = true;
  document.documentElement.setAttribute("data-ws-ready", "1");
}

// anvil verify --html: keyboard navigation through the steps of the counterexamples, and
// printing with every step's changes open. Inlined into the page; no external resource.
(function () {
  "use strict";
  var steps = Array.prototype.slice.call(document.querySelectorAll(".step[data-step]"));
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.counterexample"));
  var status = document.getElementById("nav-status");
  var current = -1;

  function describe(el) {
    var cx = el.closest("section.counterexample");
    var inCx = cx ? cx.querySelectorAll(".step[data-step]") : [];
    var pos = Array.prototype.indexOf.call(inCx, el) + 1;
    return (cx ? cx.getAttribute("data-property") + ": " : "") + "step " +
      el.getAttribute("data-step") + " (" + pos + " of " + inCx.length + ")" +
      (el.closest(".cycle") ? ", in the cycle" : "");
  }

  function select(i, scroll) {
    if (steps.length === 0) { return; }
    i = Math.max(0, Math.min(steps.length - 1, i));
    if (current >= 0 && steps[current]) {
      steps[current].classList.remove("current");
      steps[current].removeAttribute("aria-current");
    }
    current = i;
    var el = steps[i];
    el.classList.add("current");
    el.setAttribute("aria-current", "step");
    document.body.setAttribute("data-current-step", el.id);
    if (status) { status.textContent = describe(el); }
    if (scroll !== false && el.scrollIntoView) { el.scrollIntoView({ block: "nearest" }); }
    if (window.history && history.replaceState) {
      try { history.replaceState(null, "", "#" + el.id); } catch (e) { /* file:// in some browsers */ }
    }
  }

  function toggle(el, open) {
    var d = el.querySelector("details.changes");
    if (d) { d.open = (open === undefined) ? !d.open : open; }
  }

  function toggleAll() {
    var all = document.querySelectorAll("details.changes");
    var anyClosed = Array.prototype.some.call(all, function (d) { return !d.open; });
    Array.prototype.forEach.call(all, function (d) { d.open = anyClosed; });
  }

  function jumpSection(dir) {
    if (sections.length === 0) { return; }
    var at = current >= 0 ? sections.indexOf(steps[current].closest("section.counterexample")) : -1;
    var next = Math.max(0, Math.min(sections.length - 1, at + dir));
    var first = sections[next].querySelector(".step[data-step]");
    if (first) { select(steps.indexOf(first)); }
  }

  function onKey(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey) { return; }
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) { return; }
    var handled = true;
    switch (ev.key) {
      case "j": case "ArrowDown": select(current + 1); break;
      case "k": case "ArrowUp": select(current < 0 ? 0 : current - 1); break;
      case "g": case "Home": select(0); break;
      case "G": case "End": select(steps.length - 1); break;
      case "Enter": case "o": if (current >= 0) { toggle(steps[current]); } break;
      case "x": toggleAll(); break;
      case "n": jumpSection(1); break;
      case "p": jumpSection(-1); break;
      case "c": {
        var cx = current >= 0 ? steps[current].closest("section.counterexample") : sections[0];
        var c = cx && cx.querySelector(".cycle .step[data-step]");
        if (c) { select(steps.indexOf(c)); }
        break;
      }
      case "Escape": if (current >= 0) { steps[current].classList.remove("current"); current = -1; if (status) { status.textContent = ""; } } break;
      default: handled = false;
    }
    if (handled) { ev.preventDefault(); }
  }

  document.addEventListener("keydown", onKey);
  steps.forEach(function (el, i) {
    el.addEventListener("click", function (ev) {
      if (ev.target.closest && ev.target.closest("summary, details")) { return; }
      select(i, false);
    });
  });

  // Print every step's changes: open all details, restore afterwards.
  var wasOpen = null;
  window.addEventListener("beforeprint", function () {
    var all = document.querySelectorAll("details.changes");
    wasOpen = Array.prototype.map.call(all, function (d) { return d.open; });
    Array.prototype.forEach.call(all, function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    if (!wasOpen) { return; }
    var all = document.querySelectorAll("details.changes");
    Array.prototype.forEach.call(all, function (d, i) { d.open = !!wasOpen[i]; });
    wasOpen = null;
  });

  // Deep links: #<step id> selects that step; #keys=<keys> replays key presses (j, k, x, ...;
  // used by the browser test to drive the navigation in a headless browser).
  var hash = decodeURIComponent((location.hash || "").slice(1));
  if (hash.indexOf("keys=") === 0) {
    hash.slice(5).split("").forEach(function (k) {
      document.dispatchEvent(new KeyboardEvent("keydown", { key: k, bubbles: true, cancelable: true }));
    });
  } else if (hash) {
    var target = document.getElementById(hash);
    if (target && steps.indexOf(target) >= 0) { select(steps.indexOf(target)); }
  }
  document.documentElement.setAttribute("data-js", "ready");
})();

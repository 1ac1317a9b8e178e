"use strict";
// Puts the hermes-bench live page (figures, targets, charts) into Locust's hermes-bench tab,
// above the tab's table: Locust's extended tabs draw a table and nothing else. The page is an
// iframe, so Locust's React tree and styles are left as they are; where Locust's markup is not
// what this expects, nothing is added and the page stays linked from Download Data.
(function () {
  const KEY = "hermes-bench";
  const FRAME_ID = "hermes-bench-live";
  const SOURCE = new URL("./hermes-bench/?embed=1", document.baseURI).href;

  function tabSelected() {
    const tab = document.querySelector('[role="tab"][aria-selected="true"]');
    return tab !== null && tab.textContent.trim().toLowerCase() === KEY;
  }

  function place() {
    let frame = document.getElementById(FRAME_ID);
    const tabs = document.querySelector(".MuiTabs-root");
    const bar = tabs && tabs.parentElement;
    if (!tabSelected() || !bar || !bar.parentElement) {
      if (frame) frame.remove();
      return;
    }
    if (frame && frame.previousElementSibling === bar) return;
    if (!frame) {
      frame = document.createElement("iframe");
      frame.id = FRAME_ID;
      frame.title = "hermes-bench live figures";
      frame.src = SOURCE;
      frame.style.cssText = "display:block;width:100%;height:720px;border:0;margin:0 0 16px";
    }
    bar.insertAdjacentElement("afterend", frame);
  }

  window.addEventListener("message", (event) => {
    const frame = document.getElementById(FRAME_ID);
    const height = event.data && event.data.hermesBenchHeight;
    if (frame && event.origin === location.origin && event.source === frame.contentWindow && typeof height === "number")
      frame.style.height = height + "px";
  });
  new MutationObserver(place).observe(document.body, { childList: true, subtree: true });
  place();
})();

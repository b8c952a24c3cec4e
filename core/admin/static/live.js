// Live parts of a page ([data-live] with an id) are fetched again every
// few seconds and swapped in; without this script the page reads the same,
// as of when it was loaded.
(function () {
  if (!document.querySelector("[data-live]")) return;
  setInterval(async function () {
    if (document.hidden) return;
    const resp = await fetch(location.href, { credentials: "same-origin", redirect: "manual" });
    if (!resp.ok) return;
    const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
    document.querySelectorAll("[data-live]").forEach(function (el) {
      const fresh = doc.getElementById(el.id);
      if (fresh) el.replaceWith(fresh);
    });
  }, 2000);
})();

"use strict";
// The colour theme: the system's (prefers-color-scheme), or the one chosen with
// the top bar's toggle, kept in localStorage. Loaded in <head>, before the page
// is drawn, so a chosen theme shows without a flash; the toggle is wired once
// the page is parsed.
(function () {
  const KEY = "theme";
  const root = document.documentElement;
  const stored = () => { try { return localStorage.getItem(KEY); } catch (err) { return null; } };
  const apply = (theme) => {
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
    else delete root.dataset.theme;
  };
  apply(stored());

  document.addEventListener("DOMContentLoaded", () => {
    const toggle = document.getElementById("theme");
    if (!toggle) return;
    const current = () => root.dataset.theme || (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
    const label = () => {
      const next = current() === "dark" ? "light" : "dark";
      toggle.textContent = next === "dark" ? "Dark" : "Light";
      toggle.setAttribute("aria-label", "Use the " + next + " theme");
    };
    label();
    toggle.addEventListener("click", () => {
      const next = current() === "dark" ? "light" : "dark";
      apply(next);
      try { localStorage.setItem(KEY, next); } catch (err) { /* private mode: for this page only */ }
      label();
    });
  });
})();

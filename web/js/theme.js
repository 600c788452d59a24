// Classic (non-module) script loaded in <head> of every page, before the first paint: applies
// the theme the person chose last time (localStorage), else the system's (prefers-color-scheme).
(function () {
    try {
        var t = localStorage.getItem('vmb-theme');
        if (t === 'light' || t === 'dark')
            document.documentElement.dataset.theme = t;
    } catch (e) { /* storage refused: follow the system */ }
})();

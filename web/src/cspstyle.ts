// xterm.js (6.0) writes its renderer's CSS into <style> elements and, for
// some colours, into style attributes. The server's CSP (style-src 'self',
// no 'unsafe-inline') blocks both, which breaks the terminal's layout.
// build.mjs rewrites those few places in xterm's bundle to call these
// helpers instead: constructable stylesheets (document.adoptedStyleSheets)
// and the CSSOM (element.style), which the CSP does not govern. Nothing
// is loosened in the CSP. xterm's issue #4445 tracks it upstream.

/** A stand-in for a <style> element: its textContent feeds a constructed stylesheet. */
export function cspStyle(doc: Document): HTMLElement {
  const el = doc.createElement('kaginashi-style');
  el.hidden = true;
  let text = '';
  let sheet: CSSStyleSheet | null = null;
  Object.defineProperty(el, 'textContent', {
    configurable: true,
    get: () => text,
    set: (v: string | null) => {
      text = v ?? '';
      if (!sheet) {
        sheet = new CSSStyleSheet();
        doc.adoptedStyleSheets = [...doc.adoptedStyleSheets, sheet];
      }
      sheet.replaceSync(text);
    },
  });
  const remove = el.remove.bind(el);
  el.remove = () => {
    if (sheet) {
      const s = sheet;
      doc.adoptedStyleSheets = doc.adoptedStyleSheets.filter((x) => x !== s);
      sheet = null;
    }
    remove();
  };
  return el;
}

/** Adds declarations to an element's inline style through the CSSOM. */
export function cspAddStyle(el: HTMLElement, decl: string): void {
  el.style.cssText += decl + ';';
}

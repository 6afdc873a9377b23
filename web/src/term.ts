// xterm.js set up the same way for the live terminal and the player.
// Only local fonts: the console works offline and loads nothing from the
// internet (a CJK monospace font, when installed, renders Japanese).

import { Terminal, type ITerminalOptions, type ITerminalInitOnlyOptions } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';

export const FONT_FAMILY = '"DejaVu Sans Mono", "Noto Sans Mono", "Noto Sans Mono CJK JP", "Source Han Mono", IPAGothic, Menlo, Consolas, "Liberation Mono", monospace';

export function newTerminal(opts: ITerminalOptions & ITerminalInitOnlyOptions = {}): { term: Terminal; fit: FitAddon } {
  const term = new Terminal({
    fontFamily: FONT_FAMILY,
    fontSize: 14,
    cursorBlink: true,
    scrollback: 5000,
    convertEol: false,
    // The DOM renderer (xterm's default) keeps the text in the page, which
    // screen readers and tests can read; screenReaderMode adds a live region.
    screenReaderMode: false,
    theme: { background: '#111418', foreground: '#e6e6e6', cursor: '#f0c674', selectionBackground: '#3a5a80' },
    ...opts,
  });
  const fit = new FitAddon();
  term.loadAddon(fit);
  return { term, fit };
}

/** The visible text of a terminal's buffer, one line per row (for copy and tests). */
export function bufferText(term: Terminal): string {
  const b = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < b.length; y++) lines.push(b.getLine(y)?.translateToString(true) ?? '');
  return lines.join('\n').replace(/\n+$/, '');
}

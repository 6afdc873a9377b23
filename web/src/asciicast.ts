// asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a JSON
// header line, then one JSON array per event: [seconds, code, data].

export interface Cast {
  width: number;
  height: number;
  timestamp?: number;
  idleTimeLimit?: number;
  title?: string;
  /** Output ("o") and resize ("r", "COLSxROWS") events, in time order; input is skipped. */
  events: [number, string, string][];
  duration: number;
}

export function parseCast(text: string): Cast {
  const lines = text.split('\n');
  let header: any;
  try {
    header = JSON.parse(lines[0]);
  } catch {
    throw new Error('Not an asciicast file: the first line is not JSON.');
  }
  if (!header || header.version !== 2) throw new Error(`Unsupported asciicast version ${header?.version} (want 2).`);
  const width = Number(header.width);
  const height = Number(header.height);
  if (!(width > 0 && width <= 1000 && height > 0 && height <= 1000)) throw new Error('The recording has no valid terminal size.');
  const events: [number, string, string][] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    const l = lines[i].trim();
    if (!l) continue;
    let e: unknown;
    try {
      e = JSON.parse(l);
    } catch {
      throw new Error(`Line ${i + 1} of the recording is not JSON.`);
    }
    if (!Array.isArray(e) || e.length < 3 || typeof e[0] !== 'number' || typeof e[1] !== 'string' || typeof e[2] !== 'string') {
      throw new Error(`Line ${i + 1} of the recording is not an event [time, code, data].`);
    }
    if (e[1] !== 'o' && !(e[1] === 'r' && /^\d{1,4}x\d{1,4}$/.test(e[2]))) continue;
    // Times never go backwards in a valid file; clamp if one does.
    last = Math.max(last, e[0]);
    events.push([last, e[1], e[2]]);
  }
  const idle = Number(header.idle_time_limit);
  if (idle > 0) {
    // Shorten long pauses as asciinema's player does.
    let shift = 0;
    let prev = 0;
    for (const ev of events) {
      const gap = ev[0] - shift - prev;
      if (gap > idle) shift += gap - idle;
      ev[0] -= shift;
      prev = ev[0];
    }
  }
  return { width, height, timestamp: header.timestamp, idleTimeLimit: idle > 0 ? idle : undefined, title: header.title, events, duration: events.length ? events[events.length - 1][0] : 0 };
}

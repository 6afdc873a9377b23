package audit

// Queued is how many events wait for the next group commit now: a gauge
// read at scrape time, so it costs nothing per event.
func (w *Writer) Queued() int { return len(w.ch) }

package core

import "sync"

// maxCachedTemplates bounds the campaigns whose parsed templates the
// engine keeps between ticks: more than usually send at once. Past it the
// least recently used is dropped (and parsed again when its campaign next
// sends), so a long-lived daemon that has sent many campaigns does not
// hold all their templates and render buffers (each entry keeps at most
// one executable copy, with its buffer, per send its campaign ran at once).
const maxCachedTemplates = 8

// templateCache holds campaigns' parsed templates between ticks, by
// campaign id. An entry is used only for the very sources it parsed: an
// edit of the campaign's subject, text or HTML misses it and replaces it,
// so a tick renders exactly what a freshly parsed Renderer would.
type templateCache struct {
	mu      sync.Mutex
	clock   uint64
	entries map[int64]*cachedTemplates
}

type cachedTemplates struct {
	tmpl *parsedTemplates
	used uint64 // the cache's clock at the last use
}

// campaignTemplates returns c's templates parsed: the cached ones when
// they were parsed from c's current sources, else freshly parsed (and
// cached). EINVALID, as NewRenderer, when a template does not parse; a
// failure is not cached.
func (e *Engine) campaignTemplates(c *Campaign) (*parsedTemplates, error) {
	tc := &e.templates
	tc.mu.Lock()
	tc.clock++
	if ent := tc.entries[c.ID]; ent != nil && ent.tmpl.parses(c.Subject, c.Text, c.HTML) {
		ent.used = tc.clock
		tc.mu.Unlock()
		return ent.tmpl, nil
	}
	tc.mu.Unlock()
	// Parsed outside the lock: another campaign's tick need not wait.
	tmpl, err := parseCampaignTemplates(c.Subject, c.Text, c.HTML)
	if err != nil {
		return nil, err
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.entries == nil {
		tc.entries = map[int64]*cachedTemplates{}
	}
	if _, ok := tc.entries[c.ID]; !ok && len(tc.entries) >= maxCachedTemplates {
		var oldest int64
		var used uint64
		for id, ent := range tc.entries {
			if used == 0 || ent.used < used {
				oldest, used = id, ent.used
			}
		}
		delete(tc.entries, oldest)
	}
	tc.entries[c.ID] = &cachedTemplates{tmpl: tmpl, used: tc.clock}
	return tmpl, nil
}

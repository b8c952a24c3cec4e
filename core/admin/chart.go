package admin

import (
	"fmt"
	"html/template"
	"strings"

	"github.com/campaignd/campaignd/core"
)

// Chart geometry, in SVG user units (the image scales to its box).
const (
	chartW, chartH = 720, 180
	chartPad       = 28 // room for the axis labels
)

// chartSVG draws sent (below) and failed plus bounced (stacked above) per
// minute as bars, server-side: no script, readable by a screen reader
// through its title and each bar's title. It holds numbers and times
// only, nothing a user wrote, so its markup is safe as it is.
func chartSVG(ms []core.MinuteCount) template.HTML {
	var peak int64 = 1
	var sent, failed int64
	for _, m := range ms {
		peak = max(peak, m.Sent+m.Failed+m.Bounced)
		sent += m.Sent
		failed += m.Failed + m.Bounced
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %d %d" role="img" aria-labelledby="chart-title" xmlns="http://www.w3.org/2000/svg">`, chartW, chartH)
	fmt.Fprintf(&b, `<title id="chart-title">Sent and failed per minute over %d minutes: %d sent, %d failed or bounced</title>`, len(ms), sent, failed)
	plotW, plotH := float64(chartW-chartPad), float64(chartH-chartPad)
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%.0f" x2="%d" y2="%.0f"/>`, chartPad, plotH, chartW, plotH)
	fmt.Fprintf(&b, `<text class="label" x="0" y="12">%d</text><text class="label" x="0" y="%.0f">0</text>`, peak, plotH)
	if len(ms) > 0 {
		bw := plotW / float64(len(ms))
		for i, m := range ms {
			x := float64(chartPad) + float64(i)*bw
			hs := plotH * float64(m.Sent) / float64(peak)
			hf := plotH * float64(m.Failed+m.Bounced) / float64(peak)
			fmt.Fprintf(&b, `<g><title>%s: %d sent, %d failed, %d bounced</title>`, m.Minute.UTC().Format("15:04"), m.Sent, m.Failed, m.Bounced)
			fmt.Fprintf(&b, `<rect class="sent" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x+0.5, plotH-hs, max(bw-1, 0.5), hs)
			if hf > 0 {
				fmt.Fprintf(&b, `<rect class="failed" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>`, x+0.5, plotH-hs-hf, max(bw-1, 0.5), hf)
			}
			b.WriteString(`</g>`)
		}
		first, last := ms[0].Minute.UTC().Format("15:04"), ms[len(ms)-1].Minute.UTC().Format("15:04 UTC")
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d">%s</text>`, chartPad, chartH-6, first)
		fmt.Fprintf(&b, `<text class="label" x="%d" y="%d" text-anchor="end">%s</text>`, chartW, chartH-6, last)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // numbers and times only, see above
}

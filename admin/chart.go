package admin

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

// The chart is drawn twice, in a 420 × 200 box for small screens (at
// that width one SVG unit is one CSS pixel and the 11-unit labels are
// readable) and in an 840 × 260 one for wide screens; app.css shows one.
// An SVG scales its text with its box, so one drawing cannot be readable
// at both sizes, and without script the server cannot know the width.
const (
	chartLeft   = 34 // room for the y labels
	chartRight  = 8
	chartTop    = 26 // room for the legend
	chartBottom = 22 // room for the x labels
)

// chartBox is one size of the chart.
type chartBox struct {
	class, id string
	w, h      int
	xLabels   int // how many times the x axis names
}

var chartBoxes = []chartBox{
	{"chart chart-narrow", "chart-n", 420, 200, 3},
	{"chart chart-wide", "chart-w", 840, 260, 5},
}

// chartSeries is one line of the chart.
type chartSeries struct {
	name  string
	color string
	dash  string // stroke-dasharray: the lines differ by more than colour
	value func(activity.Counts) int
}

var chartLines = []chartSeries{
	{"Sign-ins", "#1d6b37", "", func(c activity.Counts) int { return c.LoginSucceeded }},
	{"Failures", "#a42323", "6 3", func(c activity.Counts) int { return c.LoginFailed }},
	{"Denials", "#8a5300", "2 2", func(c activity.Counts) int { return c.AccessDenied }},
}

// renderChart draws sign-ins, failures and denials over time as inline
// SVG: no script, and the numbers stay in the page for screen readers
// (title and desc) and for the table-minded.
func renderChart(st activity.Stats, loc *time.Location) template.HTML {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	for _, box := range chartBoxes {
		drawChart(&b, st, loc, box)
	}
	// Everything written is numbers, fixed words and escaped text.
	return template.HTML(b.String())
}

func drawChart(b *strings.Builder, st activity.Stats, loc *time.Location, box chartBox) {
	chartW, chartH := box.w, box.h
	n := len(st.Buckets)
	totals := make([]int, len(chartLines))
	peak := 0
	for _, c := range st.Buckets {
		for i, s := range chartLines {
			v := s.value(c)
			totals[i] += v
			peak = max(peak, v)
		}
	}
	top := niceCeil(peak)
	plotW := float64(chartW - chartLeft - chartRight)
	plotH := float64(chartH - chartTop - chartBottom)
	x := func(i int) float64 {
		if n <= 1 {
			return chartLeft + plotW/2
		}
		return chartLeft + plotW*float64(i)/float64(n-1)
	}
	y := func(v int) float64 { return chartTop + plotH - plotH*float64(v)/float64(top) }

	title := "Sign-ins, failures and denials"
	var desc strings.Builder
	fmt.Fprintf(&desc, "From %s to %s in buckets of %s: ", chartTime(st.From, loc, 0), chartTime(st.To, loc, 0), span(st.Bucket))
	for i, s := range chartLines {
		if i > 0 {
			desc.WriteString(", ")
		}
		fmt.Fprintf(&desc, "%d %s", totals[i], strings.ToLower(s.name))
	}
	fmt.Fprintf(&desc, "; at most %d in one bucket.", peak)

	fmt.Fprintf(b, `<svg class="%s" viewBox="0 0 %d %d" width="100%%" role="img" aria-labelledby="%s-title %s-desc" font-size="11" font-family="system-ui, sans-serif">`,
		box.class, chartW, chartH, box.id, box.id)
	fmt.Fprintf(b, `<title id="%s-title">%s</title><desc id="%s-desc">%s</desc>`, box.id, esc(title), box.id, esc(desc.String()))
	// Legend.
	lx := float64(chartLeft)
	for i, s := range chartLines {
		fmt.Fprintf(b, `<line x1="%.1f" y1="10" x2="%.1f" y2="10" stroke="%s" stroke-width="2.5"%s/>`, lx, lx+16, s.color, dashAttr(s.dash))
		label := s.name + " " + strconv.Itoa(totals[i])
		fmt.Fprintf(b, `<text x="%.1f" y="14" fill="#1c2130">%s</text>`, lx+20, esc(label))
		lx += 20 + float64(len(label))*6.2 + 14
	}
	// Grid and y labels: 0, half, top.
	for _, v := range []int{0, top / 2, top} {
		if v == top/2 && (top%2 != 0 || top < 2) {
			continue
		}
		fmt.Fprintf(b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#dfe3ea"/>`, chartLeft, y(v), chartW-chartRight, y(v))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end" fill="#5a6273">%d</text>`, chartLeft-4, y(v)+4, v)
	}
	// X labels: first, middle, last bucket.
	if n > 0 {
		var idx []int
		for k := range box.xLabels {
			i := k * (n - 1) / max(box.xLabels-1, 1)
			if len(idx) == 0 || idx[len(idx)-1] != i {
				idx = append(idx, i)
			}
		}
		anchors := map[int]string{0: "start", n - 1: "end"}
		for _, i := range idx {
			a := anchors[i]
			if a == "" {
				a = "middle"
			}
			fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="%s" fill="#5a6273">%s</text>`, x(i), chartH-6, a,
				esc(chartTime(st.Buckets[i].Start, loc, st.Bucket)))
		}
	}
	// Lines, the busiest drawn first so the rarer stay on top.
	for i := range chartLines {
		s := chartLines[i]
		var pts strings.Builder
		for j, c := range st.Buckets {
			fmt.Fprintf(&pts, "%.1f,%.1f ", x(j), y(s.value(c)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-linejoin="round"%s points="%s"><title>%s</title></polyline>`,
			s.color, dashAttr(s.dash), strings.TrimSpace(pts.String()), esc(s.name))
	}
	b.WriteString(`</svg>`)
}

func dashAttr(d string) string {
	if d == "" {
		return ""
	}
	return ` stroke-dasharray="` + d + `"`
}

func esc(s string) string { return template.HTMLEscapeString(s) }

// niceCeil is the smallest of 2, 4 or 10 × 10ⁿ at or above v: a round top
// whose half, the middle grid line, is whole.
func niceCeil(v int) int {
	if v <= 2 {
		return 2
	}
	for m := 1; ; m *= 10 {
		for _, f := range []int{2, 4, 10} {
			if f*m >= v {
				return f * m
			}
		}
	}
}

// chartTime labels a time in loc: the hour for buckets under a day, the
// date otherwise; bucket 0 gives both.
func chartTime(t time.Time, loc *time.Location, bucket time.Duration) string {
	t = t.In(loc)
	switch {
	case bucket == 0:
		return t.Format("2 Jan 2006 15:04 MST")
	case bucket < 24*time.Hour:
		return t.Format("2 Jan 15:04")
	}
	return t.Format("2 Jan")
}

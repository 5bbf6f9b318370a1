package admin

import (
	"encoding/xml"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones the tests use, whatever the machine has

	"github.com/gatehouse-proxy/gatehouse/internal/activity"
)

func TestRenderChart(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	st := activity.Stats{From: t0, To: t0.Add(4 * time.Hour), Bucket: time.Hour}
	for i, c := range []activity.Counts{{LoginSucceeded: 3}, {LoginFailed: 7, AccessDenied: 1}, {}, {LoginSucceeded: 1, AccessDenied: 2}} {
		c.Start = t0.Add(time.Duration(i) * time.Hour)
		st.Buckets = append(st.Buckets, c)
	}
	ams, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		t.Fatal(err)
	}
	svg := string(renderChart(st, ams))

	// Well-formed XML, so every browser draws it.
	dec := xml.NewDecoder(strings.NewReader("<div>" + svg + "</div>"))
	for {
		if _, err := dec.Token(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("chart is not well-formed: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{
		`class="chart chart-narrow" viewBox="0 0 420 200"`, `class="chart chart-wide" viewBox="0 0 840 260"`,
		`role="img"`, `aria-labelledby="chart-n-title chart-n-desc"`,
		`<title id="chart-n-title">Sign-ins, failures and denials</title>`,
		"4 sign-ins, 7 failures, 3 denials; at most 7 in one bucket.",
		"Sign-ins 4", "Failures 7", "Denials 3",
		"1 May 02:00", // the first bucket, in Amsterdam (CEST)
		"CEST",
	} {
		if !strings.Contains(svg, want) {
			t.Errorf("chart lacks %q\n%s", want, svg)
		}
	}
	if strings.Contains(svg, "<script") || strings.Contains(svg, "style=") {
		t.Error("the chart needs neither script nor inline style (CSP)")
	}
	if n := strings.Count(svg, "<polyline"); n != 6 {
		t.Errorf("%d lines, want 3 in each of 2 sizes", n)
	}
	// The peak (7 failures, bucket 1 of 4) on a scale to 10:
	// x = 34 + 378/3 = 160, y = 26 + 152 - 152*7/10 = 71.6.
	if !regexp.MustCompile(`points="[^"]* 160\.0,71\.6 `).MatchString(svg) {
		t.Errorf("failures line misses its peak at (160.0, 71.6):\n%s", svg)
	}
}

func TestRenderChartEmpty(t *testing.T) {
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	svg := string(renderChart(activity.Stats{From: t0, To: t0.Add(time.Hour), Bucket: time.Hour,
		Buckets: []activity.Counts{{Start: t0}}}, nil))
	if !strings.Contains(svg, "0 sign-ins, 0 failures, 0 denials") || strings.Contains(svg, "NaN") {
		t.Errorf("empty chart:\n%s", svg)
	}
}

func TestNiceCeil(t *testing.T) {
	for in, want := range map[int]int{0: 2, 1: 2, 2: 2, 3: 4, 5: 10, 11: 20, 21: 40, 99: 100, 101: 200, 4000: 4000, 4001: 10000} {
		if got := niceCeil(in); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", in, got, want)
		}
	}
}

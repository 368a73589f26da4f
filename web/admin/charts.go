package admin

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// Charts are SVG drawn on the server: readable without JavaScript, styled by
// classes in admin.css (the CSP allows no inline style), each bar with a
// <title> that browsers show on hover and screen readers read.

// series is one kind of bar (an outcome, "ingested", …) over the hours.
type series struct {
	Name   string
	Class  string // CSS class of its bars and legend swatch
	Values []float64
}

// chart is a bar chart over consecutive hours.
type chart struct {
	ID      string
	Title   string // the accessible name
	Hours   []time.Time
	Series  []series
	Stacked bool                 // stack the series (else side by side)
	Format  func(float64) string // a value as text (default: a number)
	Empty   string               // shown instead when every value is 0
	MinTop  float64              // the y axis reaches at least this
}

const (
	chartW, chartH         = 720.0, 180.0
	padL, padR, padT, padB = 48.0, 8.0, 10.0, 22.0
)

func (c chart) format(v float64) string {
	if c.Format != nil {
		return c.Format(v)
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// niceCeil rounds v up to 1, 2 or 5 × 10^n.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}

func (c chart) max() float64 {
	m := 0.0
	for i := range c.Hours {
		sum := 0.0
		for _, s := range c.Series {
			if c.Stacked {
				sum += s.Values[i]
			} else {
				sum = math.Max(sum, s.Values[i])
			}
		}
		m = math.Max(m, sum)
	}
	return m
}

// Empty reports whether there is nothing to draw.
func (c chart) IsEmpty() bool { return c.max() == 0 }

// SVG draws the chart.
func (c chart) SVG() template.HTML {
	esc := template.HTMLEscapeString
	var b strings.Builder
	top := niceCeil(math.Max(c.max(), c.MinTop))
	plotW, plotH := chartW-padL-padR, chartH-padT-padB
	fmt.Fprintf(&b, `<svg class="chart" id="%s" viewBox="0 0 %g %g" role="img" aria-label="%s" xmlns="http://www.w3.org/2000/svg">`,
		esc(c.ID), chartW, chartH, esc(c.Title))
	fmt.Fprintf(&b, `<title>%s</title>`, esc(c.Title))
	// Grid lines and the y axis labels: 0, half, top.
	for _, f := range []float64{0, 0.5, 1} {
		y := padT + plotH*(1-f)
		fmt.Fprintf(&b, `<line class="grid" x1="%g" x2="%g" y1="%.1f" y2="%.1f"/>`, padL, chartW-padR, y, y)
		fmt.Fprintf(&b, `<text class="axis" x="%g" y="%.1f" text-anchor="end">%s</text>`, padL-6, y+4, esc(c.format(top*f)))
	}
	n := len(c.Hours)
	if n == 0 {
		b.WriteString(`</svg>`)
		return template.HTML(b.String())
	}
	slot := plotW / float64(n)
	barW := slot * 0.78
	for i, h := range c.Hours {
		x := padL + slot*float64(i) + (slot-barW)/2
		label := h.UTC().Format("15:04") + "–" + h.UTC().Add(time.Hour).Format("15:04") + " UTC"
		if i%3 == 0 {
			fmt.Fprintf(&b, `<text class="axis" x="%.1f" y="%g" text-anchor="middle">%s</text>`, x+barW/2, chartH-6, h.UTC().Format("15h"))
		}
		base := padT + plotH
		var parts []string
		for j, s := range c.Series {
			v := s.Values[i]
			if v <= 0 {
				continue
			}
			parts = append(parts, c.format(v)+" "+s.Name)
			hgt := plotH * v / top
			bx, bw := x, barW
			if !c.Stacked {
				bw = barW / float64(len(c.Series))
				bx = x + bw*float64(j)
			}
			y := base - hgt
			if c.Stacked {
				base = y
			} else {
				y = padT + plotH - hgt
			}
			fmt.Fprintf(&b, `<rect class="bar %s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" data-series="%s" data-value="%g"/>`,
				esc(s.Class), bx, y, bw, math.Max(hgt, 0.5), esc(s.Name), v)
		}
		// An invisible column over the whole slot tells every value of the hour.
		if len(parts) == 0 {
			parts = []string{"none"}
		}
		fmt.Fprintf(&b, `<rect class="hit" x="%.1f" y="%g" width="%.1f" height="%g" data-hour="%s"><title>%s: %s</title></rect>`,
			padL+slot*float64(i), padT, slot, plotH, h.UTC().Format(time.RFC3339), esc(label), esc(strings.Join(parts, ", ")))
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// lastHours returns the n hours up to and including the one of now.
func lastHours(now time.Time, n int) []time.Time {
	end := now.UTC().Truncate(time.Hour)
	out := make([]time.Time, n)
	for i := range out {
		out[i] = end.Add(-time.Duration(n-1-i) * time.Hour)
	}
	return out
}

// duration writes seconds as "45 s", "12 min", "3.5 h".
func duration(secs float64) string {
	switch {
	case secs == 0:
		return "0"
	case secs < 90:
		return strconv.FormatFloat(math.Round(secs), 'f', -1, 64) + " s"
	case secs < 90*60:
		return strconv.FormatFloat(math.Round(secs/60), 'f', -1, 64) + " min"
	default:
		return strconv.FormatFloat(math.Round(secs/360)/10, 'f', -1, 64) + " h"
	}
}

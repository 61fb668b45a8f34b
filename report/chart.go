package report

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
)

// Chart geometry, in SVG user units.
const (
	chartLeft    = 80  // room for the calls axis
	chartRight   = 90  // room for the p99 axis
	chartTop     = 70  // title and legend
	chartBottom  = 50  // operation names
	chartHeight  = 280 // plot area
	chartGroup   = 76  // one operation: two bars and a gap
	chartBar     = 26
	colorCalls   = "#4e79a7"
	colorP99     = "#f28e2b"
	chartMinPlot = 400
)

// chartSVG draws, per operation with calls, its cluster call count (left
// axis) and the maximum of the nodes' p99 latency (right axis), as a
// self-contained SVG that any browser renders.
func (c *Cluster) chartSVG() []byte {
	var ops []OperationStats
	var maxCalls, maxP99 float64
	for _, o := range c.Operations {
		if o.TotalCalls == 0 {
			continue
		}
		ops = append(ops, o)
		maxCalls = max(maxCalls, float64(o.TotalCalls))
		maxP99 = max(maxP99, o.P99Us)
	}
	plotW := max(chartMinPlot, len(ops)*chartGroup)
	width, height := chartLeft+plotW+chartRight, chartTop+chartHeight+chartBottom
	callsTop, callsStep := niceScale(maxCalls)
	p99Top, p99Step := niceScale(maxP99)
	baseY := float64(chartTop + chartHeight)
	yOf := func(v, top float64) float64 { return baseY - v/top*chartHeight }

	var b bytes.Buffer
	title := fmt.Sprintf("Copper cluster operations: calls and p99 latency (profiling/%s, %d %s)", c.Source, len(c.Nodes), plural(len(c.Nodes), "node"))
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, "<title>%s</title>\n", esc(title))
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="24" text-anchor="middle" font-size="15" font-weight="bold">%s</text>`+"\n", width/2, esc(title))

	// Legend.
	lx := chartLeft
	fmt.Fprintf(&b, `<g class="legend"><rect x="%d" y="38" width="12" height="12" fill="%s"/><text x="%d" y="48">calls (sum over nodes)</text>`, lx, colorCalls, lx+18)
	fmt.Fprintf(&b, `<rect x="%d" y="38" width="12" height="12" fill="%s"/><text x="%d" y="48">p99 µs (max of node p99s)</text></g>`+"\n", lx+180, colorP99, lx+198)

	// Grid and both axes' ticks (the calls scale drives the grid lines).
	for i := 0; ; i++ {
		v := float64(i) * callsStep
		if v > callsTop*(1+1e-9) {
			break
		}
		y := yOf(v, callsTop)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e0e0e0"/>`, chartLeft, f1(y), chartLeft+plotW, f1(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`+"\n", chartLeft-6, f1(y+4), tickLabel(v))
	}
	for i := 0; ; i++ {
		v := float64(i) * p99Step
		if v > p99Top*(1+1e-9) {
			break
		}
		fmt.Fprintf(&b, `<text x="%d" y="%s" fill="%s">%s</text>`+"\n", chartLeft+plotW+6, f1(yOf(v, p99Top)+4), colorP99, tickLabel(v))
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%s" stroke="#000"/>`+"\n", chartLeft, chartTop, chartLeft, f1(baseY))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%s" stroke="#000"/>`+"\n", chartLeft+plotW, chartTop, chartLeft+plotW, f1(baseY))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s" stroke="#000"/>`+"\n", chartLeft, f1(baseY), chartLeft+plotW, f1(baseY))
	midY := chartTop + chartHeight/2
	fmt.Fprintf(&b, `<text transform="translate(18 %d) rotate(-90)" text-anchor="middle">calls</text>`+"\n", midY)
	fmt.Fprintf(&b, `<text transform="translate(%d %d) rotate(90)" text-anchor="middle" fill="%s">p99 latency (µs)</text>`+"\n", width-14, midY, colorP99)

	if len(ops) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">no operations recorded</text>`+"\n", chartLeft+plotW/2, midY)
	}
	for i, o := range ops {
		x := chartLeft + i*chartGroup + (chartGroup-2*chartBar-4)/2
		calls := float64(o.TotalCalls)
		bar(&b, "bar-calls", colorCalls, x, yOf(calls, callsTop), baseY, fmt.Sprintf("%s: %d calls", o.Operation, o.TotalCalls), tickLabel(calls))
		bar(&b, "bar-p99", colorP99, x+chartBar+4, yOf(o.P99Us, p99Top), baseY, fmt.Sprintf("%s: p99 %s µs (max of nodes)", o.Operation, micros(o.P99Us)), tickLabel(o.P99Us))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="middle">%s</text>`+"\n", x+chartBar+2, f1(baseY+18), esc(o.Operation))
	}
	b.WriteString("</svg>\n")
	return b.Bytes()
}

func bar(b *bytes.Buffer, class, color string, x int, top, base float64, tooltip, label string) {
	fmt.Fprintf(b, `<rect class="%s" x="%d" y="%s" width="%d" height="%s" fill="%s"><title>%s</title></rect>`,
		class, x, f1(top), chartBar, f1(base-top), color, esc(tooltip))
	fmt.Fprintf(b, `<text x="%d" y="%s" text-anchor="middle" font-size="10">%s</text>`+"\n", x+chartBar/2, f1(top-3), esc(label))
}

// niceScale picks an axis top and tick step (1, 2 or 5 × 10^k) giving
// at most five ticks above zero.
func niceScale(maxV float64) (top, step float64) {
	if maxV <= 0 {
		return 1, 0.2
	}
	rough := maxV / 5
	mag := math.Pow(10, math.Floor(math.Log10(rough)))
	for _, m := range []float64{1, 2, 5, 10} {
		if step = m * mag; step >= rough {
			break
		}
	}
	return math.Ceil(maxV/step-1e-9) * step, step
}

// tickLabel formats a value compactly: 950, 1.5k, 12M.
func tickLabel(v float64) string {
	short := func(x float64, unit string) string {
		return strconv.FormatFloat(math.Round(x*100)/100, 'f', -1, 64) + unit
	}
	switch {
	case v >= 1e9:
		return short(v/1e9, "G")
	case v >= 1e6:
		return short(v/1e6, "M")
	case v >= 1e3:
		return short(v/1e3, "k")
	}
	return short(v, "")
}

func f1(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func esc(s string) string {
	var b bytes.Buffer
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

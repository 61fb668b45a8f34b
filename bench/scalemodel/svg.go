package scalemodel

import (
	"fmt"
	"math"
	"strings"
)

// SVG plots the projection's first-import and warm times against N
// (log scale on both axes), one colour per mode.
func (rep *Report) SVG() string {
	const w, h, left, right, top, bottom = 720.0, 420.0, 70.0, 170.0, 30.0, 50.0
	colors := map[string]string{ModeDirect: "#d62728", ModeCopper: "#1f77b4", ModeStaging: "#2ca02c"}
	var minN, maxN, minT, maxT = math.Inf(1), 0.0, math.Inf(1), 0.0
	for _, r := range rep.Projection {
		for _, t := range []float64{r.FirstS(), r.WarmS} {
			if t > 0 {
				minT, maxT = math.Min(minT, t), math.Max(maxT, t)
			}
		}
		minN, maxN = math.Min(minN, float64(r.Nodes)), math.Max(maxN, float64(r.Nodes))
	}
	if maxN == 0 {
		return `<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>`
	}
	lo, hi := math.Floor(math.Log10(minT)), math.Ceil(math.Log10(maxT))
	if hi == lo {
		hi++
	}
	nlo, nhi := math.Log10(minN), math.Log10(maxN)
	x := func(n float64) float64 { return left + (math.Log10(n)-nlo)/(nhi-nlo)*(w-left-right) }
	y := func(t float64) float64 { return h - bottom - (math.Log10(t)-lo)/(hi-lo)*(h-top-bottom) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="18" font-size="14">Modelled job start, %d processes per node (scalemodel)</text>`+"\n", left, rep.Procs)
	for e := lo; e <= hi; e++ {
		t := math.Pow(10, e)
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%s s</text>`+"\n",
			left, w-right, y(t), y(t), left-6, y(t)+4, trimG(t))
	}
	seen := map[int]bool{}
	for _, r := range rep.Projection {
		if seen[r.Nodes] {
			continue
		}
		seen[r.Nodes] = true
		fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#eee"/><text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`+"\n",
			x(float64(r.Nodes)), x(float64(r.Nodes)), top, h-bottom, x(float64(r.Nodes)), h-bottom+16, r.Nodes)
	}
	fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle">nodes (log scale)</text>`+"\n", (left+w-right)/2, h-12)
	ly := top + 10
	for _, mode := range Modes {
		for _, warm := range []bool{false, true} {
			var pts []string
			for _, r := range rep.Projection {
				if r.Mode != mode {
					continue
				}
				t := r.FirstS()
				if warm {
					t = r.WarmS
				}
				if t > 0 {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(float64(r.Nodes)), y(t)))
				}
			}
			dash, label := "", mode+" first import"
			if warm {
				dash, label = ` stroke-dasharray="5,4"`, mode+" warm"
			}
			fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", colors[mode], dash, strings.Join(pts, " "))
			for _, pt := range pts {
				xy := strings.Split(pt, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], colors[mode])
			}
			fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/><text x="%.1f" y="%.1f">%s</text>`+"\n",
				w-right+10, w-right+34, ly, ly, colors[mode], dash, w-right+38, ly+4, label)
			ly += 18
		}
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func trimG(v float64) string { return strings.TrimSuffix(fmt.Sprintf("%g", v), ".0") }

package pfsbench

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// modeColors keeps each mode's colour the same in every panel.
var modeColors = map[string]string{
	ModeLocal:    "#7f7f7f",
	ModeDirect:   "#d62728",
	ModeCopper:   "#1f77b4",
	ModeStaging:  "#2ca02c",
	ModePrefetch: "#9467bd",
}

// Plot geometry, in SVG user units.
const (
	panelW, panelH = 460, 320
	marginL        = 60
	marginR        = 20
	marginT        = 40
	marginB        = 50
)

// writeSVG draws time against N per mode, one panel per workload: cold
// (setup + run) solid, warm dashed, N on a log2 axis.
func (res *Results) writeSVG(dir string) error {
	works := []string{}
	for _, w := range []string{WorkReplay, WorkImport} {
		if len(res.modesRun(w)) > 0 {
			works = append(works, w)
		}
	}
	width := max(len(works), 1)*panelW + 20
	height := panelH + 60
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	for i, w := range works {
		res.panel(&b, w, float64(10+i*panelW))
	}
	// Legend.
	x := 20.0
	y := float64(panelH + 30)
	for _, mode := range knownModes {
		if !slices.Contains(res.modesRun(WorkReplay), mode) && !slices.Contains(res.modesRun(WorkImport), mode) {
			continue
		}
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2.5"/>`+"\n", x, y, x+24, y, modeColors[mode])
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">%s</text>`+"\n", x+30, y+4, html.EscapeString(mode))
		x += 40 + float64(len(mode))*7
	}
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black" stroke-width="1.5"/>`+"\n", x, y, x+24, y)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">cold (setup + run)</text>`+"\n", x+30, y+4)
	x += 150
	fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="black" stroke-width="1.5" stroke-dasharray="5,4"/>`+"\n", x, y, x+24, y)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f">warm</text>`+"\n", x+30, y+4)
	fmt.Fprintf(&b, `<text x="20" y="%d" fill="#555">%s</text>`+"\n", height-8,
		html.EscapeString(fmt.Sprintf("%s, %d processes per node, commit %s — %s", res.Command, res.Settings.Procs, res.Machine.Commit, res.Started.UTC().Format("2006-01-02"))))
	b.WriteString("</svg>\n")
	return os.WriteFile(filepath.Join(dir, PlotFile), []byte(b.String()), 0o644)
}

func (res *Results) panel(b *strings.Builder, work string, x0 float64) {
	nodes := res.nodesRun(work)
	maxN, maxT := 1, 0.0
	for _, r := range res.Runs {
		if r.Workload == work && r.Error == "" {
			maxN = max(maxN, r.Nodes)
			maxT = math.Max(maxT, r.TotalS)
		}
	}
	maxT = niceCeil(maxT)
	plotW := float64(panelW - marginL - marginR)
	plotH := float64(panelH - marginT - marginB)
	left, top := x0+marginL, float64(marginT)
	xOf := func(n int) float64 {
		if maxN == 1 {
			return left + plotW/2
		}
		return left + plotW*math.Log2(float64(n))/math.Log2(float64(maxN))
	}
	yOf := func(t float64) float64 { return top + plotH - plotH*t/maxT }

	title := map[string]string{WorkReplay: "replayed import (Go clients)", WorkImport: "real python3 import"}[work]
	fmt.Fprintf(b, `<text x="%.0f" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", left, html.EscapeString(title))
	fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", left, top, plotW, plotH)
	for i := 0; i <= 4; i++ {
		t := maxT * float64(i) / 4
		y := yOf(t)
		fmt.Fprintf(b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/>`+"\n", left, y, left+plotW, y)
		fmt.Fprintf(b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, y+4, trimFloat(t))
	}
	for _, n := range nodes {
		fmt.Fprintf(b, `<text x="%.1f" y="%.0f" text-anchor="middle">%d</text>`+"\n", xOf(n), top+plotH+16, n)
	}
	fmt.Fprintf(b, `<text x="%.0f" y="%.0f" text-anchor="middle">nodes N</text>`+"\n", left+plotW/2, top+plotH+36)
	fmt.Fprintf(b, `<text transform="translate(%.0f,%.0f) rotate(-90)" text-anchor="middle">seconds</text>`+"\n", x0+16, top+plotH/2)

	for _, mode := range res.modesRun(work) {
		for _, phase := range []string{"cold", "warm"} {
			var pts []string
			for _, n := range nodes {
				if r := res.find(work, mode, n, phase); r != nil {
					pts = append(pts, fmt.Sprintf("%.1f,%.1f", xOf(n), yOf(r.TotalS)))
				}
			}
			if len(pts) == 0 {
				continue
			}
			dash := ""
			if phase == "warm" {
				dash = ` stroke-dasharray="5,4"`
			}
			fmt.Fprintf(b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), modeColors[mode], dash)
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`+"\n", xy[0], xy[1], modeColors[mode])
			}
		}
	}
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func trimFloat(v float64) string {
	s := fmt.Sprintf("%.3f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "" {
		return "0"
	}
	return s
}

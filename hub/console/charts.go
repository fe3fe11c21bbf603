package console

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

// A chart is one metric of an app's instances over time, drawn on the
// server as SVG polylines (one per instance) so that it needs no script.
type chart struct {
	Name  string
	Max   string // the highest value, the top of the chart
	From  int64  // Unix seconds at the left edge
	To    int64  // and at the right edge
	Lines []chartLine
}

type chartLine struct {
	ID     string
	Color  string
	Points string // "x,y x,y ..." in the chart's viewBox
}

// Chart size, in the SVG's viewBox units.
const chartW, chartH = 600, 120

// palette colours the instances' lines, in turn.
var palette = []string{"#1d6fb8", "#d1495b", "#2b9348", "#edae49", "#6a4c93", "#00798c"}

// charts turns an app's series into one chart per metric name, sorted by
// name; every chart shares the time axis of its own points.
func charts(series []apitypes.MetricSeries) []chart { return chartsOver(series, 0, 0) }

// chartsOver is charts with the time axis from..to (Unix seconds), the
// range the page shows, so that where a point sits says when it was taken;
// zeros mean the span of the points.
func chartsOver(series []apitypes.MetricSeries, from, to int64) []chart {
	byName := map[string]*chart{}
	type pts struct {
		id     string
		points []apitypes.MetricPoint
	}
	lines := map[string][]pts{}
	for _, s := range series {
		for name, ps := range s.Metrics {
			if len(ps) == 0 {
				continue
			}
			if byName[name] == nil {
				byName[name] = &chart{Name: name, From: ps[0].T, To: ps[0].T}
			}
			lines[name] = append(lines[name], pts{s.ID, ps})
		}
	}
	var out []chart
	for name, c := range byName {
		maxV := 0.0
		for _, l := range lines[name] {
			for _, p := range l.points {
				c.From, c.To = min(c.From, p.T), max(c.To, p.T)
				maxV = max(maxV, p.V)
			}
		}
		if from < to {
			c.From, c.To = from, to
		}
		c.Max = strconv.FormatFloat(maxV, 'g', 4, 64)
		slices.SortFunc(lines[name], func(a, b pts) int { return strings.Compare(a.id, b.id) })
		for i, l := range lines[name] {
			var b strings.Builder
			for j, p := range l.points {
				x := 0.0
				if c.To > c.From {
					// Clamped: a point a little outside the range (a clock
					// step, the series' own rounding) stays on the chart.
					x = min(max(float64(p.T-c.From)/float64(c.To-c.From)*chartW, 0), chartW)
				}
				y := float64(chartH)
				if maxV > 0 {
					y = chartH - p.V/maxV*chartH
				}
				if j > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%.1f,%.1f", x, y)
			}
			c.Lines = append(c.Lines, chartLine{ID: l.id, Color: palette[i%len(palette)], Points: b.String()})
		}
		out = append(out, *c)
	}
	slices.SortFunc(out, func(a, b chart) int { return strings.Compare(a.Name, b.Name) })
	return out
}

package console

import (
	"strings"
	"testing"

	"github.com/wharf-platform/wharf/pkg/apitypes"
)

func TestChartsScaleEachMetricToItsRange(t *testing.T) {
	series := []apitypes.MetricSeries{
		{ID: "web-b", Metrics: map[string][]apitypes.MetricPoint{
			"cpu":    {{T: 100, V: 0}, {T: 110, V: 2}, {T: 120, V: 4}},
			"memory": {{T: 100, V: 50}},
		}},
		{ID: "web-a", Metrics: map[string][]apitypes.MetricPoint{
			"cpu": {{T: 110, V: 1}, {T: 130, V: 1}},
		}},
		{ID: "web-c", Metrics: map[string][]apitypes.MetricPoint{"cpu": nil}},
	}
	cs := charts(series)
	if len(cs) != 2 || cs[0].Name != "cpu" || cs[1].Name != "memory" {
		t.Fatalf("charts %+v, want cpu and memory", cs)
	}
	cpu := cs[0]
	if cpu.From != 100 || cpu.To != 130 || cpu.Max != "4" || len(cpu.Lines) != 2 {
		t.Fatalf("cpu chart %+v", cpu)
	}
	// Lines in instance order; x spans 100..130 s over 600, y 0..4 over 120 (top is 4).
	if cpu.Lines[0].ID != "web-a" || cpu.Lines[0].Points != "200.0,90.0 600.0,90.0" {
		t.Fatalf("web-a line %+v", cpu.Lines[0])
	}
	if cpu.Lines[1].ID != "web-b" || cpu.Lines[1].Points != "0.0,120.0 200.0,60.0 400.0,0.0" {
		t.Fatalf("web-b line %+v", cpu.Lines[1])
	}
	if cpu.Lines[0].Color == cpu.Lines[1].Color {
		t.Fatal("two instances share a colour")
	}
	// One point: a single x at the left, the value at the top.
	if m := cs[1]; m.Lines[0].Points != "0.0,0.0" {
		t.Fatalf("memory line %+v", m.Lines[0])
	}
	if len(charts(nil)) != 0 {
		t.Fatal("charts of no series")
	}
}

func TestChartsRenderAsSVG(t *testing.T) {
	pages, err := parsePages()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	cs := charts([]apitypes.MetricSeries{{ID: "web-a", Metrics: map[string][]apitypes.MetricPoint{"cpu": {{T: 1, V: 1}, {T: 2, V: 3}}}}})
	if err := pages["app"].ExecuteTemplate(&b, "charts", cs); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`aria-label="cpu"`, `<polyline fill="none" stroke="#1d6fb8"`, `points="0.0,80.0 600.0,0.0"`, "top: 3"} {
		if !strings.Contains(b.String(), want) {
			t.Fatalf("chart lacks %s:\n%s", want, b.String())
		}
	}
}

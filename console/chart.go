package console

import (
	"sort"
	"strconv"
	"time"
)

// chart is one small bar chart: blocks and alerts per day, drawn as SVG by
// the dashboard template from these numbers (no script, no library).
type chart struct {
	Title string
	// Base is the y of the axis; labels go below it.
	Base   int
	Total  int
	Alerts int
	Max    int
	Bars   []bar
	Width  int
	Height int
	// Ticks label the first, middle and last day.
	Ticks []tick
}

type bar struct {
	X, BlockY, BlockH, AlertY, AlertH, W int
	Label                                string
}

type tick struct {
	X      int
	Label  string
	Anchor string // start, middle or end, so edge labels are not cut off
}

// The small charts' size, and the overall chart's (wider, so that the SVG,
// which scales to the page's width, keeps its text at reading size).
const (
	chartW, chartH = 320, 96
	wideW, wideH   = 960, 150
	chartB         = 18 // room for the day labels
)

// charts builds the overall chart and one per category (the busiest
// first) for days days from start, and a table of totals per category.
func charts(rows []DayCount, start time.Time, days int) (chart, []chart, []CategoryCount) {
	index := map[string]int{}
	for i := 0; i < days; i++ {
		index[start.AddDate(0, 0, i).Format("2006-01-02")] = i
	}
	type series struct{ blocks, alerts []int }
	per := map[string]*series{}
	all := &series{make([]int, days), make([]int, days)}
	for _, r := range rows {
		i, ok := index[r.Day]
		if !ok {
			continue
		}
		s := per[r.Category]
		if s == nil {
			s = &series{make([]int, days), make([]int, days)}
			per[r.Category] = s
		}
		s.blocks[i] += r.Blocks
		s.alerts[i] += r.Alerts
		all.blocks[i] += r.Blocks
		all.alerts[i] += r.Alerts
	}
	var table []CategoryCount
	for cat, s := range per {
		table = append(table, CategoryCount{Category: cat, Blocks: sum(s.blocks), Alerts: sum(s.alerts)})
	}
	sort.Slice(table, func(i, j int) bool {
		if a, b := table[i].Blocks+table[i].Alerts, table[j].Blocks+table[j].Alerts; a != b {
			return a > b
		}
		return table[i].Category < table[j].Category
	})
	build := func(title string, s *series, chartW, chartH int) chart {
		c := chart{Title: title, Total: sum(s.blocks), Alerts: sum(s.alerts), Width: chartW, Height: chartH + chartB, Base: chartH}
		c.Max = 1
		for i := range s.blocks {
			c.Max = max(c.Max, s.blocks[i], s.alerts[i])
		}
		slot := chartW / days
		for i := 0; i < days; i++ {
			d := start.AddDate(0, 0, i)
			bh := s.blocks[i] * chartH / c.Max
			ah := s.alerts[i] * chartH / c.Max
			if s.blocks[i] > 0 && bh == 0 {
				bh = 1
			}
			if s.alerts[i] > 0 && ah == 0 {
				ah = 1
			}
			x := i*slot + 2
			w := (slot - 4) / 2
			c.Bars = append(c.Bars, bar{X: x, W: w, BlockY: chartH - bh, BlockH: bh, AlertY: chartH - ah, AlertH: ah,
				Label: d.Format("Mon 2 Jan") + ": " + strconv.Itoa(s.blocks[i]) + " blocked, " + strconv.Itoa(s.alerts[i]) + " alerts"})
			switch i {
			case 0:
				c.Ticks = append(c.Ticks, tick{X: x, Label: d.Format("2 Jan"), Anchor: "start"})
			case days / 2:
				c.Ticks = append(c.Ticks, tick{X: x + w, Label: d.Format("2 Jan"), Anchor: "middle"})
			case days - 1:
				c.Ticks = append(c.Ticks, tick{X: x + 2*w, Label: d.Format("2 Jan"), Anchor: "end"})
			}
		}
		return c
	}
	overall := build("All categories", all, wideW, wideH)
	var cs []chart
	for i, t := range table {
		if i == 8 {
			break
		}
		cs = append(cs, build(t.Category, per[t.Category], chartW, chartH))
	}
	return overall, cs, table
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

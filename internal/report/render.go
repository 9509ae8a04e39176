package report

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
)

//go:embed assets/page.css
var pageCSS string

//go:embed assets/page.js
var pageJS string

// Write writes a page: one self-contained HTML file whose styles, script and
// data are inline, so it opens from disk and fetches nothing. The data is
// JSON, HTML-escaped by encoding/json (no "</script>" can end it early), and
// the script puts it on the page as text only.
func Write(w io.Writer, data any) error {
	body, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("encode the page's data: %w", err)
	}
	b := bufio.NewWriter(w)
	b.WriteString("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n")
	b.WriteString("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n")
	// Nothing is loaded from anywhere: the policy says so to the browser too.
	b.WriteString("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n")
	b.WriteString("<title>arcbench report</title>\n<style>\n")
	b.WriteString(pageCSS)
	b.WriteString("</style>\n</head>\n<body>\n" + dataOpen)
	b.Write(body)
	b.WriteString("</script>\n<script>\n")
	b.WriteString(pageJS)
	b.WriteString("</script>\n</body>\n</html>\n")
	return b.Flush()
}

// dataOpen starts the script holding a page's data.
const dataOpen = `<script id="data" type="application/json">`

// Data is the JSON a page written by Write holds: a Page or a Comparison.
func Data(html []byte) ([]byte, error) {
	_, rest, ok := strings.Cut(string(html), dataOpen)
	if !ok {
		return nil, fmt.Errorf("not an arcbench page: no data script")
	}
	body, _, ok := strings.Cut(rest, "</script>")
	if !ok {
		return nil, fmt.Errorf("not an arcbench page: the data script does not end")
	}
	return []byte(body), nil
}

// Comparison is the page comparing runs: each run's figures, and the tasks
// one run solved and another did not, with each run's grids for them.
type Comparison struct {
	Kind        string       `json:"kind"` // "compare"
	Palette     []string     `json:"palette"`
	Runs        []Run        `json:"runs"`
	Differences []Difference `json:"differences"`
}

// Difference is a task solved in some of the runs that have it and not in others.
type Difference struct {
	ID    string           `json:"id"`
	ByRun map[string]*Task `json:"by_run"`
}

// Compare puts built pages side by side.
func Compare(pages []*Page) *Comparison {
	c := &Comparison{Kind: "compare", Palette: Palette, Differences: []Difference{}}
	tasks := map[string]map[string]*Task{}
	for _, p := range pages {
		c.Runs = append(c.Runs, p.Run)
		for i := range p.Tasks {
			t := &p.Tasks[i]
			if tasks[t.ID] == nil {
				tasks[t.ID] = map[string]*Task{}
			}
			tasks[t.ID][p.Run.RunID] = t
		}
	}
	for id, byRun := range tasks {
		solved := 0
		for _, t := range byRun {
			if t.Kind == KindSolved {
				solved++
			}
		}
		if solved > 0 && solved < len(byRun) {
			c.Differences = append(c.Differences, Difference{ID: id, ByRun: byRun})
		}
	}
	sort.Slice(c.Differences, func(i, j int) bool { return c.Differences[i].ID < c.Differences[j].ID })
	return c
}

// WriteTable writes a comparison's figures as a text table.
func WriteTable(w io.Writer, c *Comparison) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	// COST/TASK is model and compute together, as the page's chart plots it.
	fmt.Fprintln(tw, "CONFIG\tRUN\tSTATUS\tSCORE\tCOST/TASK\tMODEL + COMPUTE\tSOLVED\tATTEMPTS\tTASKS")
	for _, r := range c.Runs {
		score := "-"
		if r.Score != nil {
			score = fmt.Sprintf("%.1f%%", *r.Score*100)
		}
		cost := fmt.Sprintf("$%.6f", r.CostPerTask)
		if r.UnreadableCosts > 0 {
			cost += fmt.Sprintf(" (+%d unreadable)", r.UnreadableCosts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t$%s + $%s\t%d\t%d\t%d\n", r.ConfigName, r.RunID, r.Status, score, cost,
			r.CostUSD, r.ComputeCostUSD, r.Solved, r.Attempts, r.Total)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	ids := make([]string, 0, len(c.Differences))
	for _, d := range c.Differences {
		ids = append(ids, d.ID)
	}
	shown := ids
	if len(shown) > 10 {
		shown = append(shown[:10:10], fmt.Sprintf("and %d more", len(ids)-10))
	}
	if len(ids) == 0 {
		_, err := fmt.Fprintln(w, "\nthe runs solved the same tasks")
		return err
	}
	_, err := fmt.Fprintf(w, "\n%d tasks one run solved and another did not: %s\n", len(ids), strings.Join(shown, ", "))
	return err
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/iommu-agent/iommu-agent/agent/bench"
)

// benchCmd measures the agent's paths against floors measured in the same
// run and prints the ratios (agent/bench); -merge combines reports of
// several runs (the guest's and the host's) without measuring.
func benchCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fl := newFlagSet("bench")
	format := fl.String("format", "text", "text, json or markdown")
	out := fl.String("o", "", "write the report to this file instead of stdout")
	quick := fl.Bool("quick", false, "short measurements (CI's regression check): the same ratios, noisier")
	only := fl.String("only", "", "comma-separated groups to run (default all): "+groupNames())
	devices := fl.String("devices", "", "comma-separated PCI functions bound to vfio-pci the kernel groups may use")
	cHelper := fl.String("c-helper", "", "a prebuilt C loop for the go-vs-c group (agent/bench/cloop/cloop.c), on a machine without a C compiler")
	merge := fl.String("merge", "", "comma-separated JSON reports to combine, in order, instead of measuring")
	quiet := fl.Bool("q", false, "no progress lines on stderr")
	check := fl.String("check", "", "compare the ratios with this JSON report's and fail on a row more than -margin above its own")
	margin := fl.Float64("margin", 0.5, "with -check: how far above its baseline a ratio may go, as a fraction")
	update := fl.String("update", "", "replace the table between the bench markers of this Markdown file (docs/benchmarks.md) instead of printing")
	if err := fl.Parse(args); err != nil {
		return err
	}
	switch *format {
	case "text", "json", "markdown":
	default:
		return fl.usageErrorf("-format %q: want text, json or markdown", *format)
	}
	var rep bench.Report
	if *merge != "" {
		var err error
		if rep, err = mergeReports(strings.Split(*merge, ",")); err != nil {
			return err
		}
	} else {
		groups := bench.Select(bench.Groups(), splitList(*only))
		if len(groups) == 0 {
			return fl.usageErrorf("-only %q: no such group (have %s)", *only, groupNames())
		}
		e := &bench.Env{Quick: *quick, Devices: splitList(*devices), CHelper: *cHelper}
		if !*quiet {
			e.Progress = func(f string, a ...any) { fmt.Fprintf(stderr, "bench: "+f+"\n", a...) }
		}
		rep = bench.Run(ctx, e, groups)
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if *update != "" {
		doc, err := os.ReadFile(*update)
		if err != nil {
			return err
		}
		if doc, err = bench.Update(doc, rep); err != nil {
			return fmt.Errorf("%s: %w", *update, err)
		}
		if err := os.WriteFile(*update, doc, 0o644); err != nil {
			return err
		}
	}
	if *update != "" && *out == "" {
		return checkRatios(rep, *check, *margin, stderr)
	}
	w := stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	var err error
	switch *format {
	case "json":
		err = bench.WriteJSON(w, rep)
	case "markdown":
		err = bench.WriteMarkdown(w, rep)
	default:
		err = bench.WriteText(w, rep)
	}
	if err != nil {
		return err
	}
	return checkRatios(rep, *check, *margin, stderr)
}

// checkRatios fails when a ratio of rep regressed past the baseline
// report at path by more than margin; an empty path checks nothing.
func checkRatios(rep bench.Report, path string, margin float64, stderr io.Writer) error {
	if path == "" {
		return nil
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	base, err := bench.ReadJSON(f)
	f.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	regressed, n, unlike := bench.Check(rep, base, margin)
	for _, u := range unlike {
		fmt.Fprintf(stderr, "bench: %s\n", u)
	}
	fmt.Fprintf(stderr, "bench: %d ratios compared with %s (margin %.0f%%), %d regressed\n", n, path, 100*margin, len(regressed))
	if n == 0 {
		return fmt.Errorf("no row of this run is in %s: nothing compared", path)
	}
	if len(regressed) > 0 {
		var lines []string
		for _, r := range regressed {
			lines = append(lines, r.String())
		}
		return fmt.Errorf("ratios regressed: %s", strings.Join(lines, "; "))
	}
	return nil
}

func groupNames() string {
	var names []string
	for _, b := range bench.Groups() {
		names = append(names, b.Group)
	}
	return strings.Join(names, ", ")
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// mergeReports concatenates the rows of reports; the first one's header
// leads, and every later one that ran elsewhere adds its rows under a
// group named for where it ran.
func mergeReports(paths []string) (bench.Report, error) {
	var rep bench.Report
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return rep, err
		}
		r, err := bench.ReadJSON(f)
		f.Close()
		if err != nil {
			return rep, fmt.Errorf("%s: %w", p, err)
		}
		if i == 0 {
			rep = r
			continue
		}
		rep = bench.Merge(rep, r)
	}
	if len(paths) == 0 {
		return rep, errors.New("no reports to merge")
	}
	return rep, nil
}

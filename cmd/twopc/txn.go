package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/twopc/twopc/api"
	"github.com/twopc/twopc/coordinator"
)

// runTxn is the operator's view of unfinished transactions: the
// coordinator's transactions method, as a table or one explained.
func runTxn(args []string) error {
	usage := errors.New("want 'list' or 'explain TXID'")
	if len(args) == 0 {
		return usage
	}
	switch args[0] {
	case "list":
		fs, o := clientFlags("txn list", "[flags]", "List the transactions not finished in the cluster (in doubt, being prepared, or held prepared by a participant), the oldest first, with where each waits")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 0 {
			fs.Usage()
			return errors.New("txn list takes no arguments")
		}
		txs, err := o.pending()
		if err != nil {
			return err
		}
		printPending(os.Stdout, txs)
		return nil
	case "explain":
		fs, o := clientFlags("txn explain", "[flags] TXID", "Explain one unfinished transaction: the coordinator's records of it, each participant's view, and what will resolve it")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return errors.New("want TXID")
		}
		txs, err := o.pending()
		if err != nil {
			return err
		}
		i := slices.IndexFunc(txs, func(t coordinator.PendingTx) bool { return t.ID == fs.Arg(0) })
		if i < 0 {
			return fmt.Errorf("%s is not unfinished anywhere: it is finished everywhere (committed or aborted), or never existed; finished transactions are not kept", fs.Arg(0))
		}
		explain(os.Stdout, txs[i], o.addr)
		return nil
	case "-h", "--help", "help":
		fmt.Println("Usage: twopc txn list [flags]\n       twopc txn explain [flags] TXID\n\nRun 'twopc txn list --help' for the flags.")
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: %w", args[0], usage)
}

func (o *clientOpts) pending() ([]coordinator.PendingTx, error) {
	res, err := o.call("transactions")
	if err != nil {
		return nil, err
	}
	return api.DecodePending(res)
}

func printPending(out io.Writer, txs []coordinator.PendingTx) {
	if len(txs) == 0 {
		fmt.Fprintln(out, "nothing unfinished: no transaction in doubt, none being prepared, none held prepared by a participant that answered")
		return
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "TXID\tSTATE\tAGE\tPREPARED AT\tKEYS\tWAITS FOR")
	for _, t := range txs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.State, age(t.Age), strings.Join(t.PreparedAt, ","), quoteKeys(t.Keys, 4), t.WaitsFor)
	}
	w.Flush()
}

func explain(out io.Writer, t coordinator.PendingTx, addr string) {
	fmt.Fprintf(out, "transaction %s: %s, unfinished for %s\n", t.ID, t.State, age(t.Age))
	fmt.Fprintf(out, "keys: %s\n", quoteKeys(t.Keys, len(t.Keys)))
	fmt.Fprintf(out, "\nrecords in the coordinator's log (%s):\n", addr)
	if len(t.Records) == 0 {
		fmt.Fprintln(out, "  none: no decision is logged (a transaction being prepared, or one the coordinator does not know)")
	}
	for _, r := range t.Records {
		fmt.Fprintf(out, "  %-7s participants %s\n", r.Kind, strings.Join(r.Participants, ","))
	}
	fmt.Fprintln(out, "\nparticipants:")
	for _, p := range t.PreparedAt {
		fmt.Fprintf(out, "  %-8s holds it prepared (voted yes; its writes wait for the outcome)\n", p)
	}
	for _, p := range t.Silent {
		fmt.Fprintf(out, "  %-8s did not answer: may hold it prepared\n", p)
	}
	fmt.Fprintln(out, "  (any other participant does not hold it: it applied or dropped it, or never prepared it)")
	fmt.Fprintf(out, "\nwaits for: %s\nresolved by: %s\n", t.WaitsFor, resolvedBy(t.State))
}

// resolvedBy says who finishes a transaction in state, without an
// operator.
func resolvedBy(state string) string {
	switch state {
	case "preparing":
		return "the coordinator: it commits once every participant voted yes and its records are durable, and aborts on a no, a failed call or the prepare timeout"
	case "committing", "committed":
		return "the coordinator: it sends commit to every holder, retrying with backoff until each acknowledges, then logs END"
	case "aborting", "aborted":
		return "the coordinator: it sends abort to every holder, retrying until each acknowledges"
	case "resolving":
		return "the coordinator's recovery: it commits if every participant holds the transaction prepared or applied, and aborts otherwise"
	}
	return "each holder's resolver: it asks the coordinator for the outcome (tx.outcome) after --resolve-after, and the coordinator, which has no record of it, answers abort (presumed abort)"
}

// age shows d rounded for a person; 0 is not known.
func age(d time.Duration) string {
	if d <= 0 {
		return "unknown"
	}
	return d.Round(time.Millisecond).String()
}

// quoteKeys quotes the first n keys (any bytes) and counts the rest.
func quoteKeys(keys []string, n int) string {
	q := make([]string, 0, min(n, len(keys)))
	for _, k := range keys[:min(n, len(keys))] {
		q = append(q, strconv.Quote(k))
	}
	s := strings.Join(q, " ")
	if len(keys) > n {
		s += fmt.Sprintf(" and %d more", len(keys)-n)
	}
	return s
}

package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/twopc/twopc/consensus"
	"github.com/twopc/twopc/txlog"
)

func runTxlog(args []string) error {
	fs := newFlags("txlog", "FILE", "List the transactions in a coordinator log that are not finished: committed but not yet acknowledged by every participant, or staged with no outcome yet (read-only)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("want FILE")
	}
	var st *txlog.State
	if consensus.IsRaftLog(fs.Arg(0)) {
		sc, err := consensus.Scan(fs.Arg(0))
		if err != nil {
			return err
		}
		st = sc.State
		fmt.Printf("%s: one coordinator's copy of the replicated log: raft term %d, %d entries after its snapshot, committed up to %d (%d entries not known committed here)\n",
			fs.Arg(0), sc.Term, sc.Entries, sc.Commit, sc.Uncommitted)
		if sc.Torn {
			fmt.Println("torn tail: the last write is incomplete; it was never acknowledged, and is blanked when the coordinator starts")
		}
	} else {
		var err error
		if st, err = txlog.Scan(fs.Arg(0)); err != nil {
			return err
		}
	}
	fmt.Printf("%s: epoch %d, %d unfinished transaction(s)\n", fs.Arg(0), st.Epoch, len(st.Pending))
	if st.TornTail != nil {
		fmt.Printf("torn tail: %d byte(s) at offset %d will be cut off (a copy kept) when the coordinator starts\n", st.TornTail.Bytes, st.TornTail.Offset)
	}
	if len(st.Pending) > 0 {
		fmt.Println("commit: decided, re-sent to participants until each acknowledges. staged: no outcome logged;")
		fmt.Println("the coordinator commits it if every participant holds it prepared, else aborts it.")
		fmt.Println("Transactions with no record were never committed (presumed abort) and are not listed.")
		w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "TXID\tSTATE\tPARTICIPANTS\tKEYS")
		for _, r := range st.Pending {
			keys := make([]string, len(r.Keys))
			for i, k := range r.Keys {
				keys[i] = strconv.Quote(k)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", r.TxID, r.Kind, strings.Join(r.Participants, ","), strings.Join(keys, " "))
		}
		w.Flush()
	}
	return nil
}

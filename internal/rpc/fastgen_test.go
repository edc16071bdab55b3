package rpc

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// The fuzzer's mutants of whole documents mostly break them early, so
// this test also builds documents from XML-RPC's grammar, with text made
// of the pieces the two paths could read differently, and checks that
// both paths agree on each. Most of them are within the fast path's
// subset; the test says so, or it would prove little.

// textPieces are the bits that text is built from: plain and odd
// characters, references, line ends, "]]>" in parts, scalar syntax, and
// now and then something illegal.
var textPieces = []string{
	"a", "Z", "0", "1", "7", "-", "+", ".", "e", "E", "T", ":", "=", "/", "QUJD", "2024", "0101",
	" ", "  ", "\t", "\n", "\r", "\r\n", "\n\r", "\u00a0", "\u3000", "\u0085",
	"&lt;", "&gt;", "&amp;", "&quot;", "&apos;", "&#13;", "&#xD;", "&#10;", "&#xa;", "&#9;", "&#32;",
	"&#x1F600;", "&#xD800;", "&#xFFFD;", "&#0065;", "]", "]]", ">", "é", "😀", "\x7f",
	// Rarely: what one of the paths must refuse.
	"&#0;", "&#xFFFE;", "\xff", "\x01", "&nbsp;", "&#x;", "&lt", "&", "]]>", "<!-- c -->", "<![CDATA[x]]>",
}

type docGen struct {
	r *rand.Rand
	b strings.Builder
}

func (g *docGen) ws() {
	g.b.WriteString([]string{"", "", "", " ", "\n", "\r\n", "\t", "\n  "}[g.r.IntN(8)])
}

func (g *docGen) text(maxPieces int) {
	for range g.r.IntN(maxPieces + 1) {
		n := len(textPieces)
		if g.r.IntN(20) != 0 {
			n -= 11 // the illegal ones, one time in twenty
		}
		g.b.WriteString(textPieces[g.r.IntN(n)])
	}
}

// leaf writes <el>text</el> or <el/>.
func (g *docGen) leaf(el string, maxPieces int) {
	if g.r.IntN(8) == 0 {
		g.b.WriteString("<" + el + "/>")
		return
	}
	g.b.WriteString("<" + el + ">")
	g.text(maxPieces)
	g.b.WriteString("</" + el + ">")
}

func (g *docGen) value(depth int) {
	if g.r.IntN(10) == 0 {
		g.b.WriteString("<value/>")
		return
	}
	g.b.WriteString("<value>")
	switch k := g.r.IntN(14); {
	case k < 2:
		g.text(6) // untyped
	case k < 11:
		g.ws()
		g.leaf([]string{"string", "int", "i4", "i8", "boolean", "double", "base64", "dateTime.iso8601", "nil"}[k-2], 3)
		g.ws()
	case k == 11 && depth < 4:
		g.b.WriteString("<struct>")
		for range g.r.IntN(4) {
			g.ws()
			g.b.WriteString("<member>")
			g.ws()
			g.leaf("name", 3)
			g.ws()
			g.value(depth + 1)
			g.ws()
			g.b.WriteString("</member>")
		}
		g.ws()
		g.b.WriteString("</struct>")
	case depth < 4:
		g.b.WriteString("<array>")
		g.ws()
		g.b.WriteString("<data>")
		for range g.r.IntN(5) {
			g.ws()
			g.value(depth + 1)
		}
		g.ws()
		g.b.WriteString("</data>")
		g.ws()
		g.b.WriteString("</array>")
	}
	g.b.WriteString("</value>")
}

func (g *docGen) call() string {
	g.b.Reset()
	g.b.WriteString([]string{"", `<?xml version="1.0"?>`, "<?xml version='1.0'?>\n", `<?xml version="1.0" encoding="UTF-8"?>`}[g.r.IntN(4)])
	g.b.WriteString("<methodCall>")
	g.ws()
	g.b.WriteString([]string{"<methodName>put</methodName>", "<methodName>system.multicall</methodName>", "<methodName>a b</methodName>"}[g.r.IntN(3)])
	g.ws()
	g.b.WriteString("<params>")
	for range g.r.IntN(4) {
		g.ws()
		g.b.WriteString("<param>")
		g.ws()
		g.value(1)
		g.ws()
		g.b.WriteString("</param>")
	}
	g.ws()
	g.b.WriteString("</params>")
	g.ws()
	g.b.WriteString("</methodCall>")
	g.ws()
	return g.b.String()
}

func (g *docGen) response() string {
	g.b.Reset()
	g.b.WriteString("<?xml version='1.0'?>\n<methodResponse>")
	g.ws()
	if g.r.IntN(4) == 0 {
		g.b.WriteString("<fault>")
		g.ws()
		g.b.WriteString("<value><struct><member><name>faultCode</name>")
		g.value(3)
		g.b.WriteString("</member><member><name>faultString</name>")
		g.value(3)
		g.b.WriteString("</member></struct></value>")
		g.ws()
		g.b.WriteString("</fault>")
	} else {
		g.b.WriteString("<params><param>")
		g.value(1)
		g.b.WriteString("</param></params>")
	}
	g.ws()
	g.b.WriteString("</methodResponse>")
	return g.b.String()
}

func TestFastPathGenerated(t *testing.T) {
	n := 20000
	if testing.Short() {
		n = 2000
	}
	g := &docGen{r: rand.New(rand.NewPCG(1, 2))}
	tight := Limits{MaxDepth: 3, MaxParams: 2}
	var fastCalls, fastResponses int
	for range n {
		call, resp := []byte(g.call()), []byte(g.response())
		for _, lim := range []Limits{DefaultLimits(), tight} {
			checkSameCall(t, call, lim)
			checkSameResponse(t, resp, lim)
		}
		if _, _, ok := fastCall(call, DefaultLimits()); ok {
			fastCalls++
		}
		if _, _, ok := fastResponse(resp, DefaultLimits()); ok {
			fastResponses++
		}
	}
	t.Logf("%d generated calls, %d taken by the fast path; %d responses, %d taken", n, fastCalls, n, fastResponses)
	if fastCalls < n/5 || fastResponses < n/5 {
		t.Errorf("the fast path took too few generated documents to prove much")
	}
}

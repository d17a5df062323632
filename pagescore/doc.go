// Package pagescore scores the text of an HTML page against weighted phrase
// lists, one list per category (gambling, adult, piracy), so the policy can
// block or alert on pages whose host names no list knows yet.
//
// A [Scorer] is built once from the lists: every phrase becomes a pattern of
// one Aho–Corasick automaton over normalised text (lower-cased, runs of
// anything that is not a letter, digit or combining mark collapsed to one
// space, HTML tags, comments, script and style contents skipped, character
// references decoded). Each page gets a [Run], an io.Writer the response
// body is teed into: the automaton's state is the only thing carried across
// chunk boundaries, so memory is fixed whatever the chunking, and a run stops
// looking after Options.MaxBytes bytes of HTML. [Run.Result] gives the score
// of each category (the sum of the weights of the phrases found, each phrase
// counted at most Options.MaxPerPhrase times) and the phrases matched, which
// are for the safeguarding reviewer and never for the learner's page.
//
// Phrases with negative weights describe benign context (health, sex
// education, news, research, gambling-harm support) so that a page that
// mentions a word without being about it stays below the thresholds.
package pagescore

// Package categories turns domain and URL lists (UT1 blacklists, hosts
// files, plain domain lists, adblock-style rules, URL lists) into a compact
// in-memory index that answers, for a host and optionally a path, which
// policy categories list it and from which source.
//
// The answer becomes input.categories for the policy, shaped like
// {"gambling": ["sinfonietta-gambling", "ut1:gambling"]}. Millions of
// domains are kept out of OPA's data store on purpose: OPA holds roughly
// twenty times the JSON size in memory, whereas the Index here keeps a
// 64-bit hash and a 32-bit set number per name.
//
// Match.Source is "<name>:<ut1 category>" for entries from a UT1 tree
// (for example "ut1:gambling", "ut1:arjel") and "<name>" for every other
// list (for example "blocklistproject-gambling"), so the policy and the
// safeguarding staff can always tell which list said so.
//
// An Index is immutable once built and safe for concurrent use; Manager
// owns the current one, refreshes remote sources and swaps atomically.
package categories

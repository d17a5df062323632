// Package namemodel scores a host name for the policy categories that spam
// domains hide in plain sight (gambling, adult, piracy): a new casino
// registered yesterday is on no list, but its name says what it is
// ("bengalwincasino.com", "22betapp.com").
//
// The model is linear over hashed features of the name: the words found in
// its labels (segmented with a word list and with tokens learnt from the
// lists themselves), character 3–5-grams of the registrable label, the
// public suffix, and counts of digits, hyphens and labels. It is trained
// from the loaded lists (positives) and benign names (UT1's unblocked
// categories and a popular-sites list) when the lists load, so it follows
// the provider's lists and no trained artifact is shipped. Scores are
// calibrated on benign names kept out of training, so that the default
// thresholds mean a known false-positive rate whatever the lists. Scoring
// does not allocate.
package namemodel

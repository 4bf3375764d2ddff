package report

// Properties derives r's properties table with the built-in rules, each reading
// the results of the experiment whose registry entry in bench lists it.
//
// Deprecated: it repeats bench's registry lines for a caller that cannot link bench
// (the renderers' lab test); a run derives its table from the registry itself, and
// bench's tests check that this one says the same. Call Derive with the rules of
// the experiments whose results r holds.
func Properties(r *Report) []Property {
	return Derive(r, []ExperimentRules{
		{ExpRefused, []Rule{RuleRefused}},
		{ExpClose, []Rule{RuleClose}},
		{ExpClients, []Rule{RuleSockets}},
		{ExpBoundaries, []Rule{RuleBoundaries}},
		{ExpSlowReceiver, []Rule{RuleFlowControl}},
		{ExpFanout, []Rule{RuleFanout}},
		{ExpBottleneck, []Rule{RuleCongestion}},
		{ExpHOL, []Rule{RuleHOL}},
		{ExpStream, []Rule{RuleFlowRatio, RuleRetransmission, RuleLabOrdering, RuleDuplicates, RuleChecksum, RuleReliability,
			RuleOrdering, RuleThroughput, RuleCost}},
		{ExpPingPong, []Rule{RuleRTT}},
		{ExpConnect, []Rule{RuleSetup, RuleSocketCount}},
	})
}

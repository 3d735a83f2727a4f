"""Campaigns: check-ins, lotteries, challenges and events, with rewards granted exactly once."""

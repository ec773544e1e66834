"""Application: command line, scoring engine, run driver, results and leaderboard."""

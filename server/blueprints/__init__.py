"""Blueprints: auth, submissions, leaderboard, instructor, api, internal."""

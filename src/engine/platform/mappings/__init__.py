"""The shipped column mappings of each platform's exports (one YAML file per platform), which a team may copy and edit."""

"""opsconsole RTPengine plugin: ng (UDP) + CLI (TCP) clients, collector, checks."""

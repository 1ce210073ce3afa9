"""Analytics: growth, finance and operator reports built on the platform's own figures."""

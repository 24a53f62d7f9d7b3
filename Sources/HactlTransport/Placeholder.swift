public enum HactlTransportPlaceholder {}

import HactlModel

public typealias HactlModelNodeID = NodeID

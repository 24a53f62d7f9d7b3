import HactlModel

/// Stage 1, unpack: the configuration as units the scheduler places, and the
/// reports as the state of each unit's instances.
///
/// A unit is what is placed as one: a primitive alone, a group (its members
/// on one node, in order), or a clone (`slots` copies of a primitive or a
/// group, each copy placed like a group of its own).
struct Unit: Sendable {
  enum Kind: Sendable { case primitive, group, clone }
  let id: ResourceID
  let kind: Kind
  /// The primitives, in group order (one for a primitive or a clone of one).
  let members: [ResourceSpec]
  let clone: CloneSpec?
  let slots: Int
  /// Per member: the highest role allowed, from its own target_role and
  /// its group's and clone's.
  let targetRoles: [ResourceRunRole]
  /// Per member: false when it, its group or its clone is not managed.
  let managed: [Bool]
  /// Per member: its stickiness, or its group's or clone's when they set one.
  let stickiness: [Score]

  var promotable: Bool { clone?.promotable == true }
  /// Each slot is a resource of its own on the nodes (`rsc:N`).
  var globallyUnique: Bool { clone?.globallyUnique == true }

  func instance(member: Int, slot: Int) -> InstanceID {
    InstanceID(members[member].id, clone == nil ? nil : slot)
  }

  /// The role a running instance has when it is not promoted.
  var runningRole: ResourceRunRole { promotable ? .unpromoted : .started }
}

/// The reports, per unit, per slot, per member: where each instance is and how.
struct UnitState: Sendable {
  /// `[slot][member][node]`.
  var slots: [[[NodeID: ObservedState]]]

  init(slots: Int, members: Int) {
    self.slots = Array(repeating: Array(repeating: [:], count: members), count: slots)
  }

  /// Nodes where member `member` of `slot` runs (any role).
  func running(slot: Int, member: Int) -> [NodeID: ResourceRunRole] {
    slots[slot][member].compactMapValues {
      if case .running(let role, _) = $0 { return role }
      return nil
    }
  }

  /// The node the slot's first running member is on: where the slot is now.
  func node(of slot: Int) -> NodeID? {
    for member in slots[slot].indices {
      if let node = running(slot: slot, member: member).keys.min() { return node }
    }
    return nil
  }
}

struct UnpackedModel: Sendable {
  var units: [Unit] = []
  var states: [UnitState] = []
  /// Top-level ids (primitive, group, clone) and every primitive, to its unit.
  var unitIndex: [ResourceID: Int] = [:]
  /// Instances reported that nothing configured accounts for: to be stopped.
  var orphans: [ObservedInstance] = []

  func unit(_ id: ResourceID) -> Int? { unitIndex[id] }
}

enum Unpack {
  static func model(_ input: SchedulerInput) -> UnpackedModel {
    let config = input.config
    var model = UnpackedModel()
    let grouped = Set(config.groups.flatMap(\.members))
    let cloned = Set(config.clones.map(\.child))
    let nodeCount = config.nodes.count
    func add(_ unit: Unit) {
      model.unitIndex[unit.id] = model.units.count
      for member in unit.members { model.unitIndex[member.id] = model.units.count }
      model.units.append(unit)
      model.states.append(UnitState(slots: unit.slots, members: unit.members.count))
    }
    func unit(
      id: ResourceID, kind: Unit.Kind, members: [ResourceSpec], clone: CloneSpec?, metas: [ResourceMeta]
    ) -> Unit {
      let role = metas.compactMap(\.targetRole).min()
      let managed = metas.compactMap(\.managed).allSatisfy { $0 }
      let stickiness = metas.compactMap(\.stickiness).first
      return Unit(
        id: id, kind: kind, members: members, clone: clone, slots: clone?.maximumInstances(nodes: nodeCount) ?? 1,
        targetRoles: members.map { spec in role.map { min($0, spec.targetRole) } ?? spec.targetRole },
        managed: members.map { $0.managed && managed }, stickiness: members.map { stickiness ?? $0.stickiness })
    }
    for spec in config.resources where !grouped.contains(spec.id) && !cloned.contains(spec.id) {
      add(unit(id: spec.id, kind: .primitive, members: [spec], clone: nil, metas: []))
    }
    for group in config.groups where !cloned.contains(group.id) {
      add(unit(id: group.id, kind: .group, members: members(of: group, config), clone: nil, metas: [group.meta]))
    }
    for clone in config.clones {
      if let group = config.group(clone.child) {
        add(
          unit(
            id: clone.id, kind: .clone, members: members(of: group, config), clone: clone,
            metas: [group.meta, clone.meta]))
      } else if let spec = config.resource(clone.child) {
        add(unit(id: clone.id, kind: .clone, members: [spec], clone: clone, metas: [clone.meta]))
      }
    }
    place(input.observed, into: &model)
    return model
  }

  static func members(of group: GroupSpec, _ config: ClusterConfig) -> [ResourceSpec] {
    group.members.compactMap { config.resource($0) }
  }

  /// Reported instances into their slots. An anonymous clone's instance
  /// reported without its number, or with one already taken, gets the slot
  /// its node already uses for another member, else the lowest free one.
  /// A globally-unique clone's instance keeps its number, on however many
  /// nodes it is found (as a primitive does).
  static func place(_ observed: [ObservedInstance], into model: inout UnpackedModel) {
    var unnumbered: [ObservedInstance] = []
    for entry in observed.sorted(by: { ($0.node, $0.instance) < ($1.node, $1.instance) }) {
      guard let unitIndex = model.unit(entry.instance.resource),
        let member = model.units[unitIndex].members.firstIndex(where: { $0.id == entry.instance.resource })
      else {
        model.orphans.append(entry)
        continue
      }
      let unit = model.units[unitIndex]
      let slot = unit.clone == nil ? 0 : entry.instance.index
      let alone = unit.clone == nil || unit.globallyUnique
      guard let slot, slot < unit.slots, model.states[unitIndex].slots[slot][member][entry.node] == nil,
        alone || model.states[unitIndex].slots[slot][member].isEmpty
      else {
        if !alone && (entry.instance.index.map { $0 < unit.slots } ?? true) {
          unnumbered.append(entry)
        } else {
          model.orphans.append(entry)
        }
        continue
      }
      model.states[unitIndex].slots[slot][member][entry.node] = entry.state
    }
    for entry in unnumbered {
      let unitIndex = model.unit(entry.instance.resource)!
      let member = model.units[unitIndex].members.firstIndex { $0.id == entry.instance.resource }!
      let state = model.states[unitIndex]
      let free = state.slots.indices.filter { state.slots[$0][member].isEmpty }
      let sameNode = free.first { slot in state.slots[slot].contains { $0[entry.node] != nil } }
      guard let slot = sameNode ?? free.first else {
        model.orphans.append(entry)
        continue
      }
      model.states[unitIndex].slots[slot][member][entry.node] = entry.state
    }
  }
}

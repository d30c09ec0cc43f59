# Installation and Debian packages (docs/packages.md). Included from the
# top CMakeLists.txt. `cmake --install` installs everything below; `cpack`
# (CPack's DEB generator) makes two packages of it, one per component:
#   godwit-agent        the agent, its two units, its man page, example configs
#   godwit-coordinator  the coordinator and godwitctl, the coordinator's unit,
#                       their man pages, godwitctl's bash completion, examples
# Each package also has its copyright, changelog, a sysusers.d file for the
# godwit user, its maintainer scripts and lintian overrides (deploy/debian).
include(GNUInstallDirs)

set(GODWIT_DEB_MAINTAINER "godwit maintainers <godwit@example.org>" CACHE STRING
    "The Maintainer field of the Debian packages (and their changelog's signature)")

set(_deb ${CMAKE_SOURCE_DIR}/deploy/debian)
set(_gen ${CMAKE_BINARY_DIR}/debian)

# The units name the programs where they are installed: @BINDIR@ is filled
# in at install time, with the prefix of that install (cpack's is /usr,
# whatever CMAKE_INSTALL_PREFIX the build was configured with).
set(_units_agent godwit-agent godwit-agent-proxy)
set(_units_coordinator godwit-coordinator)
foreach(comp agent coordinator)
  foreach(unit ${_units_${comp}})
    install(CODE "
      if(IS_ABSOLUTE \"${CMAKE_INSTALL_BINDIR}\")
        set(BINDIR \"${CMAKE_INSTALL_BINDIR}\")
      else()
        set(BINDIR \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}\")
      endif()
      configure_file(\"${CMAKE_SOURCE_DIR}/deploy/systemd/${unit}.service\"
                     \"${CMAKE_BINARY_DIR}/systemd/${unit}.service\" @ONLY)
      file(INSTALL \"${CMAKE_BINARY_DIR}/systemd/${unit}.service\"
           DESTINATION \"\${CMAKE_INSTALL_PREFIX}/lib/systemd/system\"
           PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
    " COMPONENT ${comp})
  endforeach()
endforeach()

install(TARGETS godwit-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)
install(TARGETS godwit-coordinator godwitctl RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        COMPONENT coordinator)

# Man pages, compressed as Debian installs them (man reads them either way).
find_program(GZIP gzip REQUIRED)
set(_man_agent godwit-agent.8)
set(_man_coordinator godwit-coordinator.8 godwitctl.1)
set(_man_gz)
foreach(comp agent coordinator)
  foreach(page ${_man_${comp}})
    string(REGEX REPLACE ".*\\.([0-9])$" "\\1" section ${page})
    add_custom_command(OUTPUT ${_gen}/man/${page}.gz
      COMMAND ${CMAKE_COMMAND} -E make_directory ${_gen}/man
      COMMAND ${GZIP} -9nc ${CMAKE_SOURCE_DIR}/docs/man/${page} > ${_gen}/man/${page}.gz
      DEPENDS ${CMAKE_SOURCE_DIR}/docs/man/${page} VERBATIM)
    list(APPEND _man_gz ${_gen}/man/${page}.gz)
    install(FILES ${_gen}/man/${page}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section}
            COMPONENT ${comp})
  endforeach()
endforeach()

install(FILES ${CMAKE_SOURCE_DIR}/deploy/bash-completion/godwitctl
        DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/bash-completion/completions
        COMPONENT coordinator)

# Per package: /usr/share/doc/PKG (copyright, changelog.gz, examples/), the
# sysusers.d file, lintian overrides and the maintainer scripts.
configure_file(${_deb}/changelog.in ${_gen}/changelog @ONLY)
add_custom_command(OUTPUT ${_gen}/changelog.gz
  COMMAND ${GZIP} -9nc ${_gen}/changelog > ${_gen}/changelog.gz
  DEPENDS ${_gen}/changelog VERBATIM)
add_custom_target(godwit_package_files ALL DEPENDS ${_man_gz} ${_gen}/changelog.gz)

set(_examples_agent agent.example.yaml agent.proxy.example.yaml)
set(_examples_coordinator coordinator.example.yaml plan.example.yaml)
set(_config_agent /etc/godwit/agent.yaml)
set(_config_coordinator /etc/godwit/coordinator.yaml)
set(_hint_agent "godwit-agent (godwit-agent-proxy on a proxy host)")
set(_hint_coordinator "godwit-coordinator")
foreach(comp agent coordinator)
  set(PKG godwit-${comp})
  set(_doc ${CMAKE_INSTALL_DATAROOTDIR}/doc/${PKG})
  install(FILES ${_deb}/copyright ${_gen}/changelog.gz DESTINATION ${_doc} COMPONENT ${comp})
  list(TRANSFORM _examples_${comp} PREPEND ${CMAKE_SOURCE_DIR}/deploy/ OUTPUT_VARIABLE _ex)
  install(FILES ${_ex} DESTINATION ${_doc}/examples COMPONENT ${comp})
  install(FILES ${_deb}/godwit.sysusers DESTINATION lib/sysusers.d RENAME ${PKG}.conf
          COMPONENT ${comp})
  install(FILES ${_deb}/${PKG}.lintian-overrides DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/lintian/overrides
          RENAME ${PKG} COMPONENT ${comp})
  set(UNITS "")
  foreach(unit ${_units_${comp}})
    string(APPEND UNITS " ${unit}.service")
  endforeach()
  string(STRIP "${UNITS}" UNITS)
  set(STATE /var/lib/godwit/${comp})
  set(CONFIG ${_config_${comp}})
  set(ENABLE_HINT ${_hint_${comp}})
  foreach(script postinst prerm postrm)
    configure_file(${_deb}/${script}.in ${_gen}/${PKG}/${script} @ONLY
                   FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ
                   GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
  endforeach()
endforeach()

# CPack: one .deb per component, named and versioned as Debian does
# (godwit-agent_0.1.0_amd64.deb), its shared-library dependencies found by
# dpkg-shlibdeps.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME godwit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent coordinator)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${GODWIT_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION database)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# systemd-sysusers makes the godwit user in postinst.
set(_sysusers "systemd | systemd-standalone-sysusers")
set(CPACK_DEBIAN_AGENT_PACKAGE_NAME godwit-agent)
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "${_sysusers}")
# pg_dump and pg_restore, for the schema phase on a database host.
set(CPACK_DEBIAN_AGENT_PACKAGE_RECOMMENDS "postgresql-client")
set(CPACK_COMPONENT_AGENT_DESCRIPTION "live PostgreSQL migration, the agent of a database or proxy host
godwit migrates a live PostgreSQL database from one server (blue) to another
(green) with logical replication, and switches the traffic over with a
cutover of milliseconds through PgBouncer, HAProxy or nginx.
.
This package has godwit-agent, which runs on each database host and each
proxy host a migration involves and carries out the coordinator's steps,
with its systemd units (godwit-agent.service, godwit-agent-proxy.service).")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${_gen}/godwit-agent/postinst ${_gen}/godwit-agent/prerm ${_gen}/godwit-agent/postrm)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_NAME godwit-coordinator)
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_DEPENDS "${_sysusers}")
set(CPACK_COMPONENT_COORDINATOR_DESCRIPTION "live PostgreSQL migration, the coordinator and godwitctl
godwit migrates a live PostgreSQL database from one server (blue) to another
(green) with logical replication, and switches the traffic over with a
cutover of milliseconds through PgBouncer, HAProxy or nginx.
.
This package has godwit-coordinator, which holds the plans and sequences the
migrations (with its systemd unit, godwit-coordinator.service), and
godwitctl, the operator's command line, with its bash completion.")
set(CPACK_DEBIAN_COORDINATOR_PACKAGE_CONTROL_EXTRA
    ${_gen}/godwit-coordinator/postinst ${_gen}/godwit-coordinator/prerm
    ${_gen}/godwit-coordinator/postrm)
include(CPack)

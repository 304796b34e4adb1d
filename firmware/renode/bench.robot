*** Comments ***
bench.robot - runs an asc-edge bench image under Renode (renode-test) until it prints
"ASC-BENCH done", then records the executed-instruction count.

    renode-test --variable ELF:/abs/bench.elf --variable CLIPS:/abs/clips.bin \
                --variable OUT_DIR:/abs/out -r /abs/out/robot firmware/renode/bench.robot

Writes ${OUT_DIR}/uart.log (every byte sent on USART1), ${OUT_DIR}/debug.bin (the raw bytes sent on
USART2: the layer-debug dump, empty otherwise) and ${OUT_DIR}/executed_instructions.txt
(the output of `sysbus.cpu ExecutedInstructions` when the stop line was seen). The test fails if
the firmware stops on a fault, an assertion or an "ASC-BENCH error" line instead, or if nothing
matching appears within ${UART_TIMEOUT_S} seconds of the terminal tester's clock.
asc_edge.device.renode.run_renode drives this file and parses both outputs.

*** Settings ***
Library             OperatingSystem
Library             String

*** Variables ***
${ELF}              ${EMPTY}
${CLIPS}            ${EMPTY}
${OUT_DIR}          ${TEMPDIR}/asc-bench-renode
${UART_TIMEOUT_S}   3600
${DONE_LINE}        ASC-BENCH done
# Any line after which the bench prints nothing useful: done, an error of the bench, or a report of
# the board layer (fault handler "*** asc board: HardFault ***", assertion, abort, stack overflow).
${STOP_PATTERN}     ASC-BENCH done|ASC-BENCH error|asc board: |HARDFAULT

*** Test Cases ***
Bench Image Runs To Completion
    Should Not Be Empty     ${ELF}      msg=pass the firmware ELF: --variable ELF:/abs/path/bench.elf
    Should Not Be Empty     ${CLIPS}    msg=pass the bench input: --variable CLIPS:/abs/path/clips.bin
    File Should Exist       ${ELF}
    File Should Exist       ${CLIPS}
    Create Directory        ${OUT_DIR}
    Remove File             ${OUT_DIR}/uart.log
    Remove File             ${OUT_DIR}/executed_instructions.txt
    Remove File             ${OUT_DIR}/debug.bin

    Execute Command         $elf=@${ELF}
    Execute Command         $clips=@${CLIPS}
    Execute Command         $uart_log="${OUT_DIR}/uart.log"
    Execute Command         $debug_log="${OUT_DIR}/debug.bin"
    Execute Command         include @${CURDIR}/bench.resc
    Create Terminal Tester  sysbus.usart1
    Start Emulation

    # One wait per clip result line ("R ..."), not one wait for the end: the terminal tester re-matches
    # its whole pending buffer as characters arrive, so a single wait over a long run (232 clips of a
    # 300-step model print ~0.7 MB) slows down quadratically; each match consumes the lines before it.
    FOR    ${i}    IN RANGE    10000000
        ${m}=               Wait For Line On Uart    ^R |${STOP_PATTERN}    timeout=${UART_TIMEOUT_S}    treatAsRegex=true    pauseEmulation=true
        ${stop}=            Evaluate    re.search($STOP_PATTERN, $m['line']) is not None    modules=re
        IF    ${stop}    BREAK
        Start Emulation
    END
    ${uart}=                Get File    ${OUT_DIR}/uart.log    encoding_errors=replace
    ${done}=                Evaluate    $DONE_LINE in $uart
    IF    not ${done}
        # A fault report spans several lines, the last one holding EXC_RETURN=: let it finish.
        Start Emulation
        Run Keyword And Ignore Error    Wait For Line On Uart    EXC_RETURN=    timeout=2    pauseEmulation=true
        ${uart}=            Get File    ${OUT_DIR}/uart.log    encoding_errors=replace
    END

    ${count}=               Execute Command    sysbus.cpu ExecutedInstructions
    ${count}=               Strip String    ${count}
    Create File             ${OUT_DIR}/executed_instructions.txt    ${count}

    Should Contain          ${uart}    ${DONE_LINE}
    ...                     msg=the firmware stopped without printing "${DONE_LINE}" (see ${OUT_DIR}/uart.log)
    ${n}=                   Convert To Integer    ${count}
    Should Be True          ${n} > 0    msg=sysbus.cpu ExecutedInstructions returned ${count}
